package flytapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// classifyStatus turns a non-200, non-401 answer into a classified error and
// closes its body.
func (c *Client) classifyStatus(resp *http.Response) error {
	msg := upstreamMessage(resp.Body)
	_ = resp.Body.Close()
	st := resp.StatusCode
	cause := fmt.Errorf("export API answered %s", resp.Status)
	if msg != "" {
		cause = fmt.Errorf("%w: %q", cause, msg)
	}
	wait, hasWait := failure.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	reason := failure.ReasonHTTP(st)
	switch {
	case st == http.StatusTooManyRequests:
		if !hasWait {
			wait = c.cfg.DefaultRetryAfter
		}
		return &failure.Error{Class: failure.Throttled, Reason: reason, RetryAfter: wait, Err: cause}
	case st == http.StatusServiceUnavailable && hasWait:
		return &failure.Error{Class: failure.Throttled, Reason: reason, RetryAfter: wait, Err: cause}
	case st >= 500, st == http.StatusRequestTimeout:
		return failure.New(failure.Transient, reason, cause)
	case st == http.StatusForbidden:
		return failure.New(failure.Permanent, failure.ReasonForbidden, cause)
	case st == http.StatusNotFound:
		return failure.New(failure.Permanent, failure.ReasonNotFound, cause)
	}
	// Any other answer (4xx, 3xx we did not follow, an unexpected 2xx)
	// will not change by asking again.
	return failure.New(failure.Permanent, reason, cause)
}

// upstreamMessage reads the start of an error answer and returns its
// message: the "error"/"message"/"detail"/"title" of a JSON body, or the
// text itself, one line of at most 200 characters.
func upstreamMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var j map[string]any
	if json.Unmarshal(b, &j) == nil {
		var parts []string
		for _, k := range []string{"error", "error_description", "message", "title", "detail"} {
			if s, ok := j[k].(string); ok && s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			return oneLine(strings.Join(parts, ": "))
		}
	}
	return oneLine(string(b))
}

func oneLine(s string) string {
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s))
	return clip(s, 200)
}

// classifyTransport classifies an error of http.Client.Do: ctx is the
// caller's context.
func classifyTransport(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		return failure.New(failure.Canceled, failure.ReasonCanceled, err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return failure.New(failure.Transient, failure.ReasonTimeout, err)
	case isReset(err):
		return failure.New(failure.Transient, failure.ReasonConnectionReset, err)
	case errors.Is(err, syscall.ECONNREFUSED) || isDNS(err):
		return failure.New(failure.Transient, failure.ReasonUnreachable, err)
	}
	return failure.New(failure.Transient, failure.ReasonRequestFailed, err)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		// The transport closed the connection on a reset it read while
		// the request was still being written.
		errors.Is(err, net.ErrClosed)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && !de.IsTimeout
}

func isXML(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/xml" || mt == "text/xml")
}
