package fetcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/flytapi"
)

// BreakerConfig sizes a circuit breaker.
type BreakerConfig struct {
	// Failures is the number of consecutive failures (transient errors:
	// 5xx, timeouts, resets, bodies cut short) that open the breaker.
	// Default 5.
	Failures uint32
	// OpenFor is how long an open breaker refuses requests before it lets
	// HalfOpenRequests through to probe. Default 60s.
	OpenFor time.Duration
	// HalfOpenRequests is how many probes a half-open breaker lets through;
	// that many successes close it. Default 1.
	HalfOpenRequests uint32
	// HalfOpenRetry is the delay given to a job refused while the probes are
	// out. Default 2s.
	HalfOpenRetry time.Duration
}

func (c *BreakerConfig) setDefaults() {
	if c.Failures == 0 {
		c.Failures = 5
	}
	if c.OpenFor == 0 {
		c.OpenFor = 60 * time.Second
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = 1
	}
	if c.HalfOpenRetry == 0 {
		c.HalfOpenRetry = 2 * time.Second
	}
}

// Validate reports the first field out of range (after defaults).
func (c BreakerConfig) Validate() error {
	if c.OpenFor < 0 || c.HalfOpenRetry < 0 {
		return errors.New("breaker: open_for and half_open_retry must not be negative")
	}
	return nil
}

// breaker is a gobreaker that remembers until when it is open, so a refused
// job can be delayed by exactly the remaining time. Safe for concurrent use.
type breaker[T any] struct {
	cb     *gobreaker.CircuitBreaker[T]
	cfg    BreakerConfig
	reason failure.Reason // of the Throttled error while open

	mu        sync.Mutex
	openUntil time.Time
}

// counted reports whether err says something about the upstream's health.
// Throttled (429, 503 with Retry-After, our own quotas) and Canceled (our
// shutdown) are kept out of the counts, as the design asks. Permanent errors
// (a refused scope or tenant, 403, 404, a wrong content type) are answers of
// a working upstream: they count as successes, and go to the dead-letter
// stream on their own.
func excluded(err error) bool {
	if err == nil {
		return false
	}
	c := failure.ClassOf(err)
	return c == failure.Throttled || c == failure.Canceled
}

func successful(err error) bool { return err == nil || failure.ClassOf(err) == failure.Permanent }

func newBreaker[T any](name string, reason failure.Reason, cfg BreakerConfig) *breaker[T] {
	b := &breaker[T]{cfg: cfg, reason: reason}
	b.cb = gobreaker.NewCircuitBreaker[T](gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.HalfOpenRequests,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
		// Called under the breaker's own lock: touch only b.mu here.
		OnStateChange: func(_ string, _, to gobreaker.State) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if to == gobreaker.StateOpen {
				b.openUntil = time.Now().Add(cfg.OpenFor)
			} else {
				b.openUntil = time.Time{}
			}
		},
		IsExcluded:   excluded,
		IsSuccessful: successful,
	})
	return b
}

// allow returns a Throttled error carrying the remaining open time when the
// breaker is open, so the job is delayed rather than failed.
func (b *breaker[T]) allow() error {
	if b.cb.State() != gobreaker.StateOpen {
		return nil
	}
	b.mu.Lock()
	wait := time.Until(b.openUntil)
	b.mu.Unlock()
	return &failure.Error{Class: failure.Throttled, Reason: b.reason, RetryAfter: max(wait, 100*time.Millisecond),
		Err: fmt.Errorf("circuit breaker %s is open", b.cb.Name())}
}

// execute runs req through the breaker; a refusal becomes Throttled.
func (b *breaker[T]) execute(req func() (T, error)) (T, error) {
	if err := b.allow(); err != nil {
		var zero T
		return zero, err
	}
	v, err := b.cb.Execute(req)
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return v, b.allow()
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return v, &failure.Error{Class: failure.Throttled, Reason: b.reason, RetryAfter: b.cfg.HalfOpenRetry,
			Err: fmt.Errorf("circuit breaker %s is half-open and probing", b.cb.Name())}
	}
	return v, err
}

// state is 0 closed, 1 half-open, 2 open (the metric's encoding).
func (b *breaker[T]) state() int64 {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return 2
	case gobreaker.StateHalfOpen:
		return 1
	}
	return 0
}

// tenantBreakers holds one breaker per tenant, made on first use.
type tenantBreakers struct {
	cfg BreakerConfig
	mu  sync.Mutex
	m   map[string]*breaker[*fetched]
}

func (t *tenantBreakers) get(tenant string) *breaker[*fetched] {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[tenant]
	if !ok {
		b = newBreaker[*fetched]("tenant "+tenant, failure.ReasonBreakerOpen, t.cfg)
		t.m[tenant] = b
	}
	return b
}

func (t *tenantBreakers) each(f func(tenant string, b *breaker[*fetched])) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, b := range t.m {
		f(k, b)
	}
}

// tokenBreaker is a flytapi.TokenSource with one breaker for the token
// endpoint in front of the Source: while the endpoint keeps failing, every
// job is delayed without asking it.
type tokenBreaker struct {
	src flytapi.TokenSource
	b   *breaker[auth.Token]
}

var _ flytapi.TokenSource = (*tokenBreaker)(nil)

func (t *tokenBreaker) Token(ctx context.Context, key auth.Key) (auth.Token, error) {
	return t.b.execute(func() (auth.Token, error) { return t.src.Token(ctx, key) })
}

func (t *tokenBreaker) Invalidate(key auth.Key, rejected auth.Token) { t.src.Invalidate(key, rejected) }
