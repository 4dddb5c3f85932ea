package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/oauth2"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// permanentCodes are the RFC 6749 (and upstream) error codes that say the
// request will never succeed as it is: wrong credentials, scope or tenant.
var permanentCodes = map[failure.Reason]bool{
	failure.ReasonInvalidClient:        true,
	failure.ReasonInvalidScope:         true,
	failure.ReasonInvalidTenant:        true,
	failure.ReasonUnauthorizedClient:   true,
	failure.ReasonInvalidRequest:       true,
	failure.ReasonInvalidGrant:         true,
	failure.ReasonUnsupportedGrantType: true,
	failure.ReasonAccessDenied:         true,
}

// transientCodes are error codes that say "try again later".
var transientCodes = map[failure.Reason]bool{
	failure.ReasonServerError:            true,
	failure.ReasonTemporarilyUnavailable: true,
}

// classify turns a token request error into a *failure.Error whose text holds
// the status, the OAuth code and a cleaned description — never the response
// body verbatim, the request, the secret or a token.
func classify(key Key, app Application, err error, closed bool) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return classifyRetrieve(key, app, re)
	}
	var bad *badTokenResponse
	switch {
	case closed && errors.Is(err, context.Canceled):
		return failure.New(failure.Canceled, failure.ReasonClosed, fmt.Errorf("token for %s: %w", key, errClosed))
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return failure.New(failure.Transient, failure.ReasonTokenTimeout, fmt.Errorf("token for %s: %w", key, err))
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed):
		// net.ErrClosed: the transport closed the connection on a reset
		// it read while the request body was still being written.
		return failure.New(failure.Transient, failure.ReasonTokenConnectionReset, fmt.Errorf("token for %s: %w", key, err))
	case errors.Is(err, syscall.ECONNREFUSED) || isDNS(err):
		return failure.New(failure.Transient, failure.ReasonTokenUnreachable, fmt.Errorf("token for %s: %w", key, err))
	case errors.As(err, &bad):
		// A 2xx answer without a usable token: a proxy or a broken
		// deployment, worth another try.
		return failure.New(failure.Transient, failure.ReasonTokenBadResponse, fmt.Errorf("token for %s: %w", key, bad))
	}
	return failure.New(failure.Transient, failure.ReasonTokenRequestFailed, fmt.Errorf("token for %s: %s", key, scrub(err.Error(), app)))
}

func classifyRetrieve(key Key, app Application, re *oauth2.RetrieveError) error {
	status := 0
	var h http.Header
	if re.Response != nil {
		status = re.Response.StatusCode
		h = re.Response.Header
	}
	code, hasCode := oauthReason(re.ErrorCode)
	desc := scrub(re.ErrorDescription, app)
	cause := fmt.Errorf("token for %s: endpoint answered %d", key, status)
	if hasCode {
		cause = fmt.Errorf("%w %s", cause, code)
	}
	if desc != "" {
		cause = fmt.Errorf("%w: %q", cause, desc)
	}
	wait, hasWait := failure.ParseRetryAfter(h.Get("Retry-After"), time.Now())
	switch {
	case status == http.StatusTooManyRequests || (status == http.StatusServiceUnavailable && hasWait):
		return &failure.Error{Class: failure.Throttled, Reason: failure.ReasonTokenHTTP(status), RetryAfter: wait, Err: cause}
	case transientCodes[code]:
		return &failure.Error{Class: failure.Transient, Reason: code, RetryAfter: wait, Err: cause}
	case status >= 500:
		return failure.New(failure.Transient, failure.ReasonTokenHTTP(status), cause)
	case status == http.StatusRequestTimeout:
		return failure.New(failure.Transient, failure.ReasonTokenTimeout, cause)
	case permanentCodes[code]:
		return failure.New(failure.Permanent, code, cause)
	case hasCode:
		// An error code we do not know on a 4xx (or a 2xx, which some
		// servers use): the endpoint refused this request as it is.
		return failure.New(failure.Permanent, code, cause)
	}
	return failure.New(failure.Permanent, failure.ReasonTokenHTTP(status), cause)
}

// oauthReason is the failure reason of an OAuth error code
// (failure.ReasonOAuth); hasCode is false for none: an empty code, or one
// longer than 40 characters, which no real code is.
func oauthReason(c string) (_ failure.Reason, hasCode bool) {
	if c == "" || len(c) > 40 {
		return "", false
	}
	return failure.ReasonOAuth(c), true
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
