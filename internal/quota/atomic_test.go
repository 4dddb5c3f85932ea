package quota

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
)

// Three replicas (each its own connection and Limiter) with eight takers
// each race through a quota and at its edge: exactly the quota is granted,
// never one more, and the store counts exactly what was granted.
func TestTakeIsAtomicAcrossReplicas(t *testing.T) {
	srv := bustest.RunServer(t)
	ctx := context.Background()
	_, js := bustest.Connect(t, srv)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ratelimit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "quota"}); err != nil {
		t.Fatal(err)
	}
	var replicas []*Limiter
	for range 3 {
		_, js := bustest.Connect(t, srv)
		rate, err := js.KeyValue(ctx, "ratelimit")
		if err != nil {
			t.Fatal(err)
		}
		counts, err := js.KeyValue(ctx, "quota")
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, New(rate, counts, nil, nil))
	}
	race := func(app string, lim Limits) int64 {
		var granted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, l := range replicas {
			for range 8 {
				wg.Go(func() {
					<-start
					for {
						_, err := l.Take(ctx, app, lim)
						if err == nil {
							granted.Add(1)
							continue
						}
						if r := failure.ReasonOf(err); r != "daily_quota_used" && r != "monthly_quota_used" {
							t.Errorf("Take: %v, want granted or a quota used up", err)
						}
						return
					}
				})
			}
		}
		close(start)
		wg.Wait()
		return granted.Load()
	}

	// From nothing through the daily quota.
	lim := Limits{Daily: 60, Monthly: 1000}
	if got := race("app", lim); got != 60 {
		t.Fatalf("24 takers on 3 replicas were granted %d requests of a daily quota of 60", got)
	}
	st, err := replicas[1].State(ctx, "app", lim, time.Now())
	if err != nil || st.Daily.Used != 60 || st.Monthly.Used != 60 {
		t.Fatalf("the store counts %+v (%v), want 60 and 60", st, err)
	}

	// At the edge: one request left of the monthly quota, 24 takers.
	for i := range 5 {
		app := fmt.Sprintf("edge%d", i)
		edge := Limits{Monthly: 10}
		for range 9 {
			if _, err := replicas[0].Take(ctx, app, edge); err != nil {
				t.Fatal(err)
			}
		}
		if got := race(app, edge); got != 1 {
			t.Fatalf("round %d: 24 takers at limit-1 were granted %d requests, want exactly 1", i, got)
		}
		if st, err := replicas[2].State(ctx, app, edge, time.Now()); err != nil || st.Monthly.Used != 10 {
			t.Fatalf("round %d: the store counts %+v (%v), want 10", i, st.Monthly, err)
		}
	}
}
