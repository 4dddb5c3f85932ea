package rawpublish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

func TestMeasure(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	rate, err := Measure(ctx, b.JS, "lms.bench.person.created", 1024, 2000, WithMsgID())
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Fatalf("rate %v", rate)
	}
	s, _ := b.JS.Stream(ctx, bus.StreamLMS)
	if info, _ := s.Info(ctx); info.State.Msgs != 2000 || info.State.Bytes < 2000*1024 {
		t.Errorf("LMS holds %d messages, %d bytes after 2000 of 1 KiB", info.State.Msgs, info.State.Bytes)
	}
	// A subject no stream captures fails instead of reporting a rate.
	if _, err := Measure(ctx, b.JS, "nowhere.at.all", 16, 10); err == nil {
		t.Error("publish to a subject without a stream reported a rate")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Measure(cctx, b.JS, "lms.bench.person.created", 16, 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// BenchmarkRawPublish measures asynchronous JetStream publishing of 1 KiB
// messages on an in-process server, with JetStream's default fsync and with
// sync_always. Run: go test -run x -bench RawPublish -benchtime 1x ./internal/rawpublish
// (RAW_COUNT sets messages per run, default 50000).
func BenchmarkRawPublish(b *testing.B) {
	count := 50000
	if s := os.Getenv("RAW_COUNT"); s != "" {
		if _, err := fmt.Sscan(s, &count); err != nil {
			b.Fatal(err)
		}
	}
	for _, sync := range []bool{false, true} {
		name := "default_fsync"
		if sync {
			name = "sync_always"
		}
		b.Run(name, func(b *testing.B) {
			bs := bustest.Open(b, func(o *server.Options) { o.SyncAlways = sync })
			var rate float64
			for b.Loop() {
				r, err := Measure(context.Background(), bs.JS, "lms.bench.person.created", 1024, count, WithMsgID())
				if err != nil {
					b.Fatal(err)
				}
				rate = r
			}
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(rate*1024/(1<<20), "MiB/s")
		})
	}
}
