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

// sender publishes one export's change events asynchronously, with at most
// window waiting for their acknowledgement, on a JetStream context of its
// own whose acknowledgement and error handlers count what the stream stored
// and record the first failure. No future is looked at and no goroutine of
// the sender's own runs: the handlers run on the context's reply
// subscription, and wait waits for PublishAsyncComplete. (The raw publish
// rate that the publisher is measured against pays for no more than that.)
//
// A message whose acknowledgement arrived is done with (JetStream retries
// only unresolved publishes) and goes back to the sender for msg to hand
// out again, with its header map and body buffer (see
// messages.EventEncoder.EncodeTo).
//
// A sender is used by one goroutine (msg, send, then wait or abandon); its
// handlers run concurrently with it. wait and abandon remove the reply
// subscription.
type sender struct {
	js      jetstream.JetStream
	msgs    chan *nats.Msg // acknowledged messages, for msg to hand out
	timeout time.Duration
	// recent are the last sends, by seq modulo its length (twice the
	// window, so no message in flight is overwritten): where a failure
	// finds which change failed, looked at only then. Used by the sending
	// goroutine alone.
	recent []sent
	seq    int

	mu       sync.Mutex
	err      error     // the first failure, formatted
	failMsg  *nats.Msg // the first failed publish, until err is formatted
	failErr  error
	resolved int // acknowledged or failed
	stored   int
	dups     int
	failed   chan struct{} // closed on the first failure
	closed   bool
}

type sent struct {
	m    *nats.Msg
	what what
}

// what names a message in errors, formatted only when one happens.
type what struct {
	seq        int
	entity, op string
}

func (w what) String() string { return fmt.Sprintf("change %d (%s %s)", w.seq, w.entity, w.op) }

func newSender(nc *nats.Conn, window int, timeout time.Duration) (*sender, error) {
	s := &sender{msgs: make(chan *nats.Msg, window), timeout: timeout, recent: make([]sent, 2*window),
		failed: make(chan struct{})}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncAckHandler(s.acked), jetstream.WithPublishAsyncErrHandler(s.failedPublish))
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream: %w", err)
	}
	s.js = js
	return s, nil
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
	s.recent[s.seq%len(s.recent)] = sent{m, w}
	s.seq++
	if _, err := bus.PublishAsync(ctx, s.js, m); err != nil {
		return classifyPublish(fmt.Errorf("publish %s: %w", w, err))
	}
	return nil
}

// acked is the acknowledgement handler.
func (s *sender) acked(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	s.mu.Lock()
	s.resolved++
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

// failedPublish is the error handler.
func (s *sender) failedPublish(_ jetstream.JetStream, m *nats.Msg, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolved++
	if s.err == nil && s.failMsg == nil {
		s.failMsg, s.failErr = m, err
		close(s.failed)
	}
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && s.failMsg == nil {
		s.err = err
		close(s.failed)
	}
}

// firstErr is the first failure; a failed publish is named by its change.
// It is called by the sending goroutine only.
func (s *sender) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && s.failMsg != nil {
		w := what{seq: -1, entity: "?", op: "?"}
		for _, r := range s.recent {
			if r.m == s.failMsg {
				w = r.what
				break
			}
		}
		s.err = classifyPublish(fmt.Errorf("publish %s: %w", w, s.failErr))
	}
	return s.err
}

// wait waits until every publish is resolved (acknowledged or failed; or
// until none has been for the ack timeout, or ctx ends), and closes the
// sender. It returns how many messages the stream stored and how many of
// those it had already (duplicates), and the first failure.
func (s *sender) wait(ctx context.Context) (stored, dups int, err error) {
	defer s.close()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	last := -1
	done := s.js.PublishAsyncComplete()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ctx.Done():
			s.fail(ctx.Err())
			return 0, 0, ctx.Err()
		case <-timer.C:
			s.mu.Lock()
			n := s.resolved
			s.mu.Unlock()
			if n == last {
				s.fail(failure.Transientf(failure.ReasonPublishAckTimeout, "%d publishes without an acknowledgement for %s",
					s.seq-n, s.timeout))
				break wait
			}
			last = n
			timer.Reset(s.timeout)
		}
	}
	err = s.firstErr()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored, s.dups, err
}

// abandon closes the sender without waiting (the caller is failing anyway).
func (s *sender) abandon(cause error) {
	s.fail(cause)
	s.close()
}

// close removes the reply subscription; publishes not resolved yet fail.
func (s *sender) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.js.CleanupPublisher()
}

// classifyPublish keeps a classified error and makes every other publish
// failure transient: the redo republishes the same ids, and the stream
// drops what it has.
func classifyPublish(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) || errors.Is(err, context.Canceled) {
		return err
	}
	return failure.New(failure.Transient, failure.ReasonPublishFailed, err)
}
