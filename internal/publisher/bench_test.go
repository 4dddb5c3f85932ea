package publisher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rawpublish"
)

// BenchmarkFirstExport publishes a medium municipality's first export (about
// 40,000 events) to an embedded server, which shares the CPU with the
// publisher here, with several publish windows. cmd/publisher's slow test
// measures the binary on the large municipality.
func BenchmarkFirstExport(b *testing.B) {
	for _, window := range []int{1024, 4096, 8192, 16384} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				e := newEnvVendor(b, "medium", false)
				pub, err := publisher.New(e.bus.Conn, e.bus.Stores.Exports, e.bus.Stores.Snapshots,
					publisher.Config{Diff: diffConfig(b), Window: window})
				if err != nil {
					b.Fatal(err)
				}
				fe, _ := e.export(0)
				b.StartTimer()
				start := time.Now()
				out, err := pub.Process(e.ctx, fe)
				if err != nil {
					b.Fatal(err)
				}
				rate := float64(out.Events) / time.Since(start).Seconds()
				b.ReportMetric(rate, "events/s")
				b.StopTimer()
				// The raw rate on the same server, messages of the same size.
				lms, _ := e.bus.JS.Stream(e.ctx, bus.StreamLMS)
				info, _ := lms.Info(e.ctx)
				if _, err := e.bus.JS.CreateStream(e.ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}}); err != nil {
					b.Fatal(err)
				}
				raw, err := rawpublish.Measure(e.ctx, e.bus.JS, "raw.x", int(info.State.Bytes/info.State.Msgs), out.Events, rawpublish.WithMsgID())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(rate/raw, "x_raw")
			}
		})
	}
}
