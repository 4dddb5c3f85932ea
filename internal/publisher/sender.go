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
// their acknowledgement, and checks every acknowledgement, in publish order,
// in a goroutine of its own. It is used by one goroutine (msg, send, then
// wait); wait ends the checking goroutine.
//
// The futures go to the checker in batches of ackBatch, not one by one: by
// the time a batch is checked most of its acknowledgements have arrived, so
// checking one costs a look at its Ok channel, and the two goroutines meet
// once a batch instead of once a message. A message whose acknowledgement
// arrived is done with (nothing retries it any more) and goes back to the
// sender for msg to hand out again, with its header map and data buffer
// (see messages.EventEncoder.EncodeTo).
type sender struct {
	js      jetstream.JetStream
	batch   []pending      // filled by send, handed to the checker when full
	pending chan []pending // batches for the checker
	batches chan []pending // checked batches, for send to fill again
	msgs    chan *nats.Msg // acknowledged messages, for msg to hand out
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
	m    *nats.Msg
	what what
}

// ackBatch is how many futures go to the checker at once.
const ackBatch = 256

// what names a message in errors, formatted only when one happens.
type what struct {
	seq        int
	entity, op string
}

func (w what) String() string { return fmt.Sprintf("change %d (%s %s)", w.seq, w.entity, w.op) }

func newSender(js jetstream.JetStream, window int, timeout time.Duration) *sender {
	n := window/ackBatch + 2
	s := &sender{js: js, pending: make(chan []pending, n), batches: make(chan []pending, n),
		msgs: make(chan *nats.Msg, window+ackBatch), done: make(chan struct{}),
		timeout: timeout, failed: make(chan struct{})}
	go s.check()
	return s
}

// msg returns a message to fill and send: one whose publish was
// acknowledged, or a new one.
func (s *sender) msg() *nats.Msg {
	select {
	case m := <-s.msgs:
		return m
	default:
		return new(nats.Msg)
	}
}

// send publishes m. It blocks while window publishes wait for their
// acknowledgement; it fails fast once an earlier publish is known to have
// failed, so little more goes out after a gap. m belongs to the sender from
// then on.
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
	if s.batch == nil {
		select {
		case s.batch = <-s.batches:
		default:
			s.batch = make([]pending, 0, ackBatch)
		}
	}
	s.batch = append(s.batch, pending{f: f, m: m, what: w})
	if len(s.batch) < ackBatch {
		return nil
	}
	return s.flush(ctx)
}

// flush hands the batch to the checker.
func (s *sender) flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	select {
	case s.pending <- s.batch:
		s.batch = nil
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
	for batch := range s.pending {
		for _, p := range batch {
			select {
			case <-s.failed:
				continue // the export fails anyway: do not wait for the rest
			default:
			}
			ok := p.f.Ok()
			select {
			case ack := <-ok:
				s.acked(ack, p.m)
				continue
			default:
			}
			timer.Reset(s.timeout)
			select {
			case ack := <-ok:
				s.acked(ack, p.m)
			case err := <-p.f.Err():
				s.fail(classifyPublish(fmt.Errorf("publish %s: %w", p.what, err)))
			case <-timer.C:
				s.fail(failure.Transientf("publish_ack_timeout", "publish %s: no acknowledgement within %s", p.what, s.timeout))
			}
		}
		clear(batch)
		select {
		case s.batches <- batch[:0]:
		default:
		}
	}
}

func (s *sender) acked(ack *jetstream.PubAck, m *nats.Msg) {
	s.mu.Lock()
	s.stored++
	if ack.Duplicate {
		s.dups++
	}
	s.mu.Unlock()
	select {
	case s.msgs <- m:
	default:
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
	if err := s.flush(ctx); err != nil {
		if ctx.Err() != nil {
			s.abandon(err)
			return 0, 0, ctx.Err()
		}
		s.batch = nil // an earlier publish failed: that is the export's error
	}
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
