package quota

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

// BenchmarkTake: one counted request through the one compare-and-set, by a
// single taker and by 24 takers on three replicas (each its own
// connection) racing for the same key; lost races are reported per grant.
func BenchmarkTake(b *testing.B) {
	srv := bustest.RunServer(b)
	ctx := context.Background()
	_, js := bustest.Connect(b, srv)
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ratelimit"}); err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "quota", History: 1}); err != nil {
		b.Fatal(err)
	}
	var replicas []*Limiter
	for range 3 {
		_, js := bustest.Connect(b, srv)
		rate, _ := js.KeyValue(ctx, "ratelimit")
		counts, _ := js.KeyValue(ctx, "quota")
		replicas = append(replicas, New(rate, counts, nil, nil))
	}
	lim := Limits{Daily: 1 << 40, Monthly: 1 << 40}
	b.Run("one taker", func(b *testing.B) {
		for b.Loop() {
			if _, err := replicas[0].Take(ctx, "solo", lim); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("3 replicas x 8 takers", func(b *testing.B) {
		var next atomic.Int64
		b.SetParallelism(max(1, 24/runtimeProcs()))
		b.RunParallel(func(pb *testing.PB) {
			l := replicas[next.Add(1)%3]
			for pb.Next() {
				if _, err := l.Take(ctx, "shared", lim); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
