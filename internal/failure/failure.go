// Package failure is the one classifier of errors in skolebuss. Every stage
// decides from it whether to retry a job, delay it, or send it to the
// dead-letter stream, and the circuit breakers decide from it what counts as
// a failure. Every classified error has a Reason of one documented set
// (reasons.go), each with its class and the sentence an operator reads; code
// decides on classes and reasons (ClassOf, HasReason, IsUpstreamThrottle),
// never on error strings.
package failure

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Class says what to do about an error.
type Class int

const (
	// Transient errors (5xx, timeouts, resets, a body cut short) are retried
	// with backoff and count against the circuit breaker.
	Transient Class = iota
	// Throttled errors (429, 503 with Retry-After, a quota used up) are
	// retried after the wait they carry and never count as failures.
	Throttled
	// Permanent errors (bad credentials, missing scope, unlinked tenant,
	// 403, 404, a document that does not parse, an unknown message type) go
	// straight to the dead-letter stream.
	Permanent
	// Canceled means the caller gave up (context canceled); neither a failure
	// nor a reason to dead-letter.
	Canceled
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	case Canceled:
		return "canceled"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Error is a classified error. Reason is one of the set in reasons.go (for
// example ReasonInvalidClient, ReasonHTTP(503), ReasonTruncatedBody); it
// appears in the dead-letter stream and in metrics, so it never holds secrets
// or personal data.
type Error struct {
	Class      Class
	Reason     Reason
	RetryAfter time.Duration // the wait the upstream asked for, if any
	Err        error
}

func (e *Error) Error() string {
	msg := e.Class.String() + ": " + string(e.Reason)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a classified error.
func New(class Class, reason Reason, err error) *Error {
	return &Error{Class: class, Reason: reason, Err: err}
}

// Permanentf returns a permanent error with a formatted cause.
func Permanentf(reason Reason, format string, args ...any) *Error {
	return &Error{Class: Permanent, Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Transientf returns a transient error with a formatted cause.
func Transientf(reason Reason, format string, args ...any) *Error {
	return &Error{Class: Transient, Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ClassOf classifies err: the class of the outermost *Error in its chain;
// Canceled for context.Canceled; Transient for context.DeadlineExceeded and
// for every error nobody classified (an unknown failure is worth a retry, and
// the attempt limit sends it to the dead-letter stream in the end).
func ClassOf(err error) Class {
	if err == nil {
		return Transient
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	return Transient
}

// ReasonOf is the code of the reason of the outermost *Error in err's chain;
// of ReasonCanceled for context.Canceled and ReasonTimeout for
// context.DeadlineExceeded when nobody classified them; else of
// ReasonUnclassified. It is the text a dead letter, a metric label and a span
// carry; code that decides on a reason uses HasReason.
func ReasonOf(err error) string {
	if e, ok := outermost(err); ok {
		return string(e.Reason)
	}
	if errors.Is(err, context.Canceled) {
		return string(ReasonCanceled)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return string(ReasonTimeout)
	}
	return string(ReasonUnclassified)
}

// outermost is the outermost *Error in err's chain.
func outermost(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// RetryAfter is the wait carried by the outermost *Error in err's chain.
func RetryAfter(err error) (time.Duration, bool) {
	if e, ok := outermost(err); ok && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// IsPermanent reports whether err must not be retried.
func IsPermanent(err error) bool { return ClassOf(err) == Permanent }
