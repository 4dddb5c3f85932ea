package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// subscriber is a watermill Subscriber over the runtime's pull consumer. Each
// of Concurrency loops fetches one message, hands it to the router and
// settles it (ack, nak with delay) when the router acks or nacks it; while
// the router works on it, in-progress acks keep it.
type subscriber struct {
	r       *runtime
	mu      sync.Mutex
	closing chan struct{}
	once    sync.Once
}

var _ message.Subscriber = (*subscriber)(nil)

func (s *subscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closing == nil {
		s.closing = make(chan struct{})
	}
	s.mu.Unlock()
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for i := 0; i < s.r.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, out)
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func (s *subscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.once.Do(func() {
		if s.closing == nil {
			s.closing = make(chan struct{})
		}
		close(s.closing)
	})
	return nil
}

func (s *subscriber) stopped(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-s.closing:
		return true
	default:
		return false
	}
}

// loop fetches and delivers one message at a time until ctx ends or the
// subscriber closes. A message fetched is always settled.
func (s *subscriber) loop(ctx context.Context, out chan<- *message.Message) {
	for !s.stopped(ctx) {
		batch, err := s.r.cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			s.r.logger.Warn("fetch from consumer failed", "err", err)
			select {
			case <-ctx.Done():
			case <-s.closing:
			case <-time.After(time.Second):
			}
			continue
		}
		for jm := range batch.Messages() {
			s.deliver(ctx, jm, out)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !s.stopped(ctx) {
			s.r.logger.Debug("fetch ended", "err", err)
		}
	}
}

func (s *subscriber) deliver(ctx context.Context, jm jetstream.Msg, out chan<- *message.Message) {
	r := s.r
	meta, err := jm.Metadata()
	if err != nil {
		r.logger.Error("message without JetStream metadata; terminated", "subject", jm.Subject(), "err", err)
		_ = jm.Term()
		return
	}
	d := &delivery{msg: jm, meta: meta}
	d.attempt = r.priorAttempts(meta) + 1
	if t, err := r.cfg.TenantOf(jm.Subject()); err == nil {
		d.tenant = t
	}

	m := message.NewMessage(nuid.Next(), jm.Data())
	for k, v := range jm.Headers() {
		if len(v) > 0 {
			m.Metadata.Set(k, v[0])
		}
	}
	// The trace context in the headers is continued by the tracing
	// middleware, which starts the message's span.
	hctx := context.WithValue(r.hard, keyDelivery, d)
	hctx = context.WithValue(hctx, keyAttempt, d.attempt)
	hctx = context.WithValue(hctx, keySubject, jm.Subject())
	m.SetContext(hctx)

	select {
	case out <- m:
	case <-ctx.Done():
		_ = jm.Nak()
		return
	case <-s.closing:
		_ = jm.Nak()
		return
	}

	tick := time.NewTicker(r.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-m.Acked():
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := jm.DoubleAck(actx)
			cancel()
			if err != nil {
				r.logger.Warn("ack not confirmed; the message may come back (handlers are idempotent)", "tenant", d.tenant, "err", err)
			}
			return
		case <-m.Nacked():
			if d.nakDelay > 0 {
				_ = jm.NakWithDelay(d.nakDelay)
			} else {
				_ = jm.Nak()
			}
			return
		case <-tick.C:
			if err := jm.InProgress(); err != nil {
				r.logger.Warn("in-progress ack failed", "tenant", d.tenant, "err", err)
			}
		case <-r.hard.Done():
			// The drain deadline passed with the handler still running: hand the
			// message back now rather than wait for AckWait.
			_ = jm.Nak()
			<-waitSettled(m)
			return
		}
	}
}

// waitSettled is closed when the router settled m either way.
func waitSettled(m *message.Message) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-m.Acked():
		case <-m.Nacked():
		}
		close(ch)
	}()
	return ch
}
