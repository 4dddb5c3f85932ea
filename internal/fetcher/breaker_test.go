package fetcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/failure"
)

// failingSource fails every token request with err and counts them.
type failingSource struct {
	err   error
	calls int
}

func (f *failingSource) Token(context.Context, auth.Key) (auth.Token, error) {
	f.calls++
	return auth.Token{}, f.err
}
func (f *failingSource) Invalidate(auth.Key, auth.Token) {}

func TestTokenBreaker(t *testing.T) {
	cfg := BreakerConfig{Failures: 3, OpenFor: 300 * time.Millisecond}
	cfg.setDefaults()
	key := auth.Key{App: "a", Tenant: "t"}

	// Throttled, canceled and permanent answers never open it.
	for _, err := range []error{
		&failure.Error{Class: failure.Throttled, Reason: "token_http_429", RetryAfter: time.Second, Err: errors.New("429")},
		context.Canceled,
		failure.Permanentf("invalid_client", "refused"),
	} {
		src := &failingSource{err: err}
		tb := &tokenBreaker{src: src, b: newBreaker[auth.Token]("token endpoint", "token_breaker_open", cfg)}
		for range 10 {
			_, _ = tb.Token(context.Background(), key)
		}
		if src.calls != 10 {
			t.Errorf("%v: %d of 10 requests reached the endpoint", err, src.calls)
		}
	}

	// Transient failures open it: then jobs are delayed by the open time
	// without asking the endpoint.
	src := &failingSource{err: failure.Transientf("http_502", "bad gateway")}
	tb := &tokenBreaker{src: src, b: newBreaker[auth.Token]("token endpoint", "token_breaker_open", cfg)}
	for range 3 {
		if _, err := tb.Token(context.Background(), key); failure.ClassOf(err) != failure.Transient {
			t.Fatalf("err %v, want the transient failure", err)
		}
	}
	_, err := tb.Token(context.Background(), key)
	wait, ok := failure.RetryAfter(err)
	if failure.ClassOf(err) != failure.Throttled || failure.ReasonOf(err) != "token_breaker_open" || !ok || wait <= 0 || wait > cfg.OpenFor {
		t.Errorf("open breaker: %v (wait %s)", err, wait)
	}
	if src.calls != 3 {
		t.Errorf("%d calls reached the endpoint, want 3", src.calls)
	}
	// After the open time one probe goes through; it succeeds and closes it.
	time.Sleep(cfg.OpenFor + 50*time.Millisecond)
	src.err = nil
	if _, err := tb.Token(context.Background(), key); err != nil || src.calls != 4 {
		t.Errorf("probe: %v, calls %d", err, src.calls)
	}
	if tb.b.state() != 0 {
		t.Errorf("breaker state %d after a good probe, want closed", tb.b.state())
	}
}
