package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// Reasons of token failures that carry no OAuth error code.
const (
	ReasonTimeout         = "token_timeout"
	ReasonConnectionReset = "token_connection_reset"
	ReasonUnreachable     = "token_unreachable"
	ReasonRequestFailed   = "token_request_failed"
	ReasonBadResponse     = "token_bad_response"
)

// permanentCodes are the RFC 6749 (and upstream) error codes that say the
// request will never succeed as it is: wrong credentials, scope or tenant.
var permanentCodes = map[string]bool{
	"invalid_client":         true,
	"invalid_scope":          true,
	"invalid_tenant":         true,
	"unauthorized_client":    true,
	"invalid_request":        true,
	"invalid_grant":          true,
	"unsupported_grant_type": true,
	"access_denied":          true,
}

// transientCodes are error codes that say "try again later".
var transientCodes = map[string]bool{
	"server_error":            true,
	"temporarily_unavailable": true,
}

// classify turns a token request error into a *failure.Error whose text holds
// the status, the OAuth code and a cleaned description — never the response
// body verbatim, the request, the secret or a token.
func classify(key Key, app Application, err error, closed bool) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return classifyRetrieve(key, app, re)
	}
	switch {
	case closed && errors.Is(err, context.Canceled):
		return failure.New(failure.Canceled, "closed", fmt.Errorf("token for %s: %w", key, errClosed))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return failure.New(failure.Transient, ReasonTimeout, fmt.Errorf("token for %s: %w", key, err))
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed):
		// net.ErrClosed: the transport closed the connection on a reset
		// it read while the request body was still being written.
		return failure.New(failure.Transient, ReasonConnectionReset, fmt.Errorf("token for %s: %w", key, err))
	case errors.Is(err, syscall.ECONNREFUSED) || isDNS(err):
		return failure.New(failure.Transient, ReasonUnreachable, fmt.Errorf("token for %s: %w", key, err))
	case strings.HasPrefix(err.Error(), "oauth2: cannot parse") || strings.Contains(err.Error(), "missing access_token"):
		// A 2xx answer without a usable token: a proxy or a broken
		// deployment, worth another try. (x/oauth2 gives no typed error.)
		return failure.New(failure.Transient, ReasonBadResponse, fmt.Errorf("token for %s: %s", key, scrub(err.Error(), app)))
	}
	return failure.New(failure.Transient, ReasonRequestFailed, fmt.Errorf("token for %s: %s", key, scrub(err.Error(), app)))
}

func classifyRetrieve(key Key, app Application, re *oauth2.RetrieveError) error {
	status := 0
	var h http.Header
	if re.Response != nil {
		status = re.Response.StatusCode
		h = re.Response.Header
	}
	code := cleanCode(re.ErrorCode)
	desc := scrub(re.ErrorDescription, app)
	cause := fmt.Errorf("token for %s: endpoint answered %d", key, status)
	if code != "" {
		cause = fmt.Errorf("%w %s", cause, code)
	}
	if desc != "" {
		cause = fmt.Errorf("%w: %q", cause, desc)
	}
	wait, hasWait := failure.ParseRetryAfter(h.Get("Retry-After"), time.Now())
	switch {
	case status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && hasWait):
		return &failure.Error{Class: failure.Throttled, Reason: "token_http_" + strconv.Itoa(status), RetryAfter: wait, Err: cause}
	case transientCodes[code]:
		return &failure.Error{Class: failure.Transient, Reason: code, RetryAfter: wait, Err: cause}
	case status >= 500:
		return failure.New(failure.Transient, "token_http_"+strconv.Itoa(status), cause)
	case status == http.StatusRequestTimeout:
		return failure.New(failure.Transient, ReasonTimeout, cause)
	case permanentCodes[code]:
		return failure.New(failure.Permanent, code, cause)
	case code != "":
		// An error code we do not know on a 4xx (or a 2xx, which some
		// servers use): the endpoint refused this request as it is.
		return failure.New(failure.Permanent, code, cause)
	}
	return failure.New(failure.Permanent, "token_http_"+strconv.Itoa(status), cause)
}

// cleanCode keeps an OAuth error code usable as a failure reason: lower-case
// letters, digits and underscores, at most 40 characters.
func cleanCode(c string) string {
	if c == "" || len(c) > 40 {
		return ""
	}
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return "oauth_error"
		}
	}
	return c
}

// scrub shortens an upstream text to one line of at most 200 runes and
// removes the application's secret from it, should the server echo it.
func scrub(s string, app Application) string {
	if sec := app.ClientSecret.Reveal(); sec != "" {
		s = strings.ReplaceAll(s, sec, redacted)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDNS(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && !de.IsTimeout
}
