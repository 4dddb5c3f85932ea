package quota

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
)

func buckets(t *testing.T) (jetstream.KeyValue, jetstream.KeyValue) {
	t.Helper()
	_, js := bustest.Connect(t, bustest.RunServer(t))
	ctx := context.Background()
	rate, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ratelimit"})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "quota"})
	if err != nil {
		t.Fatal(err)
	}
	return rate, counts
}

// Three replicas hammering one application together stay under its rate.
func TestRateLimitSharedByReplicas(t *testing.T) {
	rate, counts := buckets(t)
	lim := Limits{Rate: 20, Burst: 5}
	var ok atomic.Int64
	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		l := New(rate, counts, nil, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				_, err := l.Take(ctx, "app", lim)
				if err == nil {
					ok.Add(1)
					continue
				}
				if failure.ClassOf(err) != failure.Throttled {
					t.Errorf("Take: %v, want a throttled error", err)
					return
				}
				d, _ := failure.RetryAfter(err)
				if d <= 0 || d > time.Second {
					t.Errorf("rate wait %v, want (0, 1s]", d)
				}
				time.Sleep(d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	max := float64(lim.Burst) + lim.Rate*elapsed
	got := float64(ok.Load())
	if got > max+1 {
		t.Fatalf("replicas together made %v requests in %.2fs, the limit allows %.1f", got, elapsed, max)
	}
	if got < 0.6*max {
		t.Fatalf("replicas made only %v requests in %.2fs of %.1f allowed: the limiter starves", got, elapsed, max)
	}
}

func TestDailyQuotaAndAlerts(t *testing.T) {
	rate, counts := buckets(t)
	var mu sync.Mutex
	var alerts []Alert
	l := New(rate, counts, func(_ context.Context, a Alert) error {
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
		return nil
	}, nil)
	lim := Limits{Daily: 10, Monthly: 100}
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		u, err := l.Take(ctx, "app", lim)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if u.Daily != int64(i) || u.Monthly != int64(i) {
			t.Fatalf("request %d: usage %+v", i, u)
		}
	}
	for range 3 {
		_, err := l.Take(ctx, "app", lim)
		if failure.ClassOf(err) != failure.Throttled || failure.ReasonOf(err) != "daily_quota_used" {
			t.Fatalf("11th request: %v, want daily_quota_used", err)
		}
		d, _ := failure.RetryAfter(err)
		now := time.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		if diff := midnight.Sub(now) - d; diff < -time.Second || diff > 5*time.Second {
			t.Fatalf("quota wait %v, want until midnight UTC (%v)", d, midnight.Sub(now))
		}
	}
	st, err := l.State(ctx, "app", lim, time.Now())
	if err != nil || st.Daily.Used != 10 || st.Daily.Remaining != 0 || !st.Daily.Paused || st.Monthly.Used != 10 || st.Monthly.Remaining != 90 {
		t.Fatalf("refused requests were counted or the state is wrong: %+v %v", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(alerts) != 3 || alerts[0].Threshold != 0.8 || alerts[0].Used != 8 || alerts[1].Threshold != 0.95 || alerts[1].Used != 10 ||
		alerts[2].Kind != KindPaused || alerts[2].Period != "daily" {
		t.Fatalf("alerts %+v, want 0.8 at 8, 0.95 at 10 and one pause however many refusals", alerts)
	}
	if alerts[0].ID() == alerts[1].ID() || alerts[1].ID() == alerts[2].ID() {
		t.Fatal("alert ids collide")
	}
}

func TestBlockIsSharedAndNeverShortened(t *testing.T) {
	rate, counts := buckets(t)
	a, b := New(rate, counts, nil, nil), New(rate, counts, nil, nil)
	ctx := context.Background()
	if err := a.Block(ctx, "app", time.Now().Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := a.Block(ctx, "app", time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := b.Take(ctx, "app", Limits{})
	d, _ := failure.RetryAfter(err)
	if failure.ReasonOf(err) != "upstream_backoff" || d < 2*time.Second {
		t.Fatalf("other replica: %v (wait %v), want upstream_backoff of ~3s", err, d)
	}
	if _, err := b.Take(ctx, "other", Limits{}); err != nil {
		t.Fatalf("another application is not blocked: %v", err)
	}
}

func TestWaitSleepsShortWaitsAndReturnsLongOnes(t *testing.T) {
	rate, counts := buckets(t)
	l := New(rate, counts, nil, nil)
	ctx := context.Background()
	lim := Limits{Rate: 10, Burst: 1}
	start := time.Now()
	for i := 0; i < 3; i++ {
		if _, err := l.Wait(ctx, "app", lim, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if e := time.Since(start); e < 150*time.Millisecond {
		t.Fatalf("3 requests at 10/s with burst 1 took %v, want >= ~200ms", e)
	}
	_ = l.Block(ctx, "app", time.Now().Add(time.Minute))
	if _, err := l.Wait(ctx, "app", lim, time.Second); failure.ClassOf(err) != failure.Throttled {
		t.Fatalf("a long block: %v, want it returned as throttled", err)
	}
}

func TestBadInput(t *testing.T) {
	rate, counts := buckets(t)
	l := New(rate, counts, nil, nil)
	if _, err := l.Take(context.Background(), "a.b>", Limits{}); !failure.IsPermanent(err) {
		t.Fatalf("hostile application name: %v, want permanent", err)
	}
	for _, lim := range []Limits{{Rate: 1}, {Rate: -1, Burst: 1}, {Daily: -1}, {AlertAt: []float64{1.5}}} {
		if lim.Validate() == nil {
			t.Errorf("%+v validated", lim)
		}
	}
}
