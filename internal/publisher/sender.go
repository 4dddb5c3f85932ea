package publisher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
)

// sender publishes messages asynchronously with at most window waiting for
// their acknowledgement, and checks every acknowledgement in a goroutine of
// its own. It is used by one goroutine (send, then wait); wait ends the
// checking goroutine.
type sender struct {
	js      jetstream.JetStream
	pending chan pending
	done    chan struct{}
	timeout time.Duration

	mu     sync.Mutex
	err    error // the first failed publish
	stored int
	dups   int
	failed chan struct{} // closed on the first failure
	closed bool          // pending is closed (by wait or abandon)
}

type pending struct {
	f    jetstream.PubAckFuture
	what what
}

// what names a message in errors, formatted only when one happens.
type what struct {
	seq        int
	entity, op string
}

func (w what) String() string { return fmt.Sprintf("change %d (%s %s)", w.seq, w.entity, w.op) }

func newSender(js jetstream.JetStream, window int, timeout time.Duration) *sender {
	s := &sender{js: js, pending: make(chan pending, window), done: make(chan struct{}),
		timeout: timeout, failed: make(chan struct{})}
	go s.check()
	return s
}

// send publishes m. It blocks while window publishes wait for their
// acknowledgement; it fails fast once an earlier publish has failed, so
// nothing more goes out after a gap.
func (s *sender) send(ctx context.Context, m *nats.Msg, w what) error {
	select {
	case <-s.failed:
		return s.firstErr()
	default:
	}
	f, err := bus.PublishAsync(ctx, s.js, m)
	if err != nil {
		return classifyPublish(fmt.Errorf("publish %s: %w", w, err))
	}
	select {
	case s.pending <- pending{f: f, what: w}:
		return nil
	case <-s.failed:
		return s.firstErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// check waits for each acknowledgement in publish order.
func (s *sender) check() {
	defer close(s.done)
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	for p := range s.pending {
		select {
		case <-s.failed:
			continue // the export fails anyway: do not wait for the rest
		default:
		}
		timer.Reset(s.timeout)
		select {
		case ack := <-p.f.Ok():
			s.mu.Lock()
			s.stored++
			if ack.Duplicate {
				s.dups++
			}
			s.mu.Unlock()
		case err := <-p.f.Err():
			s.fail(classifyPublish(fmt.Errorf("publish %s: %w", p.what, err)))
		case <-timer.C:
			s.fail(failure.Transientf("publish_ack_timeout", "publish %s: no acknowledgement within %s", p.what, s.timeout))
		}
	}
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
		close(s.failed)
	}
}

func (s *sender) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// wait closes the sender and waits until every publish is acknowledged (or
// ctx ends). It returns the first failure, and how many messages the stream
// stored and how many of those it had already (duplicates).
func (s *sender) wait(ctx context.Context) (stored, dups int, err error) {
	s.closed = true
	close(s.pending)
	select {
	case <-s.done:
	case <-ctx.Done():
		s.fail(ctx.Err()) // the checker stops waiting for the rest
		return 0, 0, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored, s.dups, s.err
}

// abandon closes the sender without waiting (the caller is failing anyway);
// the checking goroutine ends once the pending futures resolve or time out.
func (s *sender) abandon(cause error) {
	if s.closed {
		return
	}
	s.closed = true
	s.fail(cause)
	close(s.pending)
}

// classifyPublish keeps a classified error and makes every other publish
// failure transient: the redo republishes the same ids, and the stream
// drops what it has.
func classifyPublish(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) {
		return err
	}
	return failure.New(failure.Transient, "publish_failed", err)
}
