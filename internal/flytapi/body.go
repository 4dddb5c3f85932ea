package flytapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// body is Export.Body: it counts bytes, turns a short or broken body into a
// Transient error instead of io.EOF, aborts a read that stalls for the idle
// timeout, and ends the fetch span on Close.
//
// Like any io.Reader it is for one goroutine; Close may be called from
// another to abort a Read.
type body struct {
	rc      io.ReadCloser
	reqCtx  context.Context // cancelled with errStalled by the idle timer
	parent  context.Context // the caller's
	cancel  context.CancelCauseFunc
	idle    *time.Timer
	idleDur time.Duration
	want    int64 // Content-Length or -1
	span    trace.Span
	once    sync.Once

	mu  sync.Mutex // guards n and err against a Close from another goroutine
	n   int64
	err error // sticky
}

func newBody(rc io.ReadCloser, reqCtx, parent context.Context, cancel context.CancelCauseFunc, idle time.Duration, want int64, span trace.Span) *body {
	b := &body{rc: rc, reqCtx: reqCtx, parent: parent, cancel: cancel, idleDur: idle, want: want, span: span}
	b.idle = time.AfterFunc(idle, func() { cancel(errStalled) })
	return b
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	sticky := b.err
	b.mu.Unlock()
	if sticky != nil {
		return 0, sticky
	}
	n, err := b.rc.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	if n > 0 {
		b.idle.Reset(b.idleDur)
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if b.want >= 0 && b.n < b.want {
			b.err = failure.Transientf(failure.ReasonTruncatedBody, "export body ended after %d of %d bytes", b.n, b.want)
		} else {
			b.err = io.EOF
		}
	default:
		b.err = b.classify(err)
	}
	return n, b.err
}

func (b *body) classify(err error) error {
	switch {
	case errors.Is(context.Cause(b.reqCtx), errStalled) && b.parent.Err() == nil:
		return failure.New(failure.Transient, failure.ReasonBodyStalled, fmt.Errorf("export body after %d bytes: %w (%s)", b.n, errStalled, b.idleDur))
	case b.parent.Err() != nil:
		if errors.Is(b.parent.Err(), context.Canceled) {
			return failure.New(failure.Canceled, failure.ReasonCanceled, fmt.Errorf("export body after %d bytes: %w", b.n, b.parent.Err()))
		}
		return failure.New(failure.Transient, failure.ReasonTimeout, fmt.Errorf("export body after %d bytes: %w", b.n, b.parent.Err()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return failure.New(failure.Transient, failure.ReasonTruncatedBody, fmt.Errorf("export body cut off after %d bytes: %w", b.n, err))
	case isReset(err):
		return failure.New(failure.Transient, failure.ReasonConnectionReset, fmt.Errorf("export body after %d bytes: %w", b.n, err))
	}
	return failure.New(failure.Transient, failure.ReasonBodyReadFailed, fmt.Errorf("export body after %d bytes: %w", b.n, err))
}

// Close releases the connection and ends the fetch's span. It is safe to
// call more than once.
func (b *body) Close() error {
	var err error
	b.once.Do(func() {
		b.idle.Stop()
		err = b.rc.Close()
		b.cancel(nil)
		b.mu.Lock()
		defer b.mu.Unlock()
		telemetry.Set(b.span, telemetry.Count("body_bytes", b.n))
		switch {
		case b.err == io.EOF:
			b.span.SetStatus(codes.Ok, "")
		case b.err != nil:
			telemetry.RecordError(b.span, b.err)
		}
		b.span.End()
	})
	return err
}
