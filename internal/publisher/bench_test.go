package publisher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/publisher"
)

// BenchmarkFirstExport publishes a medium municipality's first export (about
// 40,000 events) to an embedded server, which shares the CPU with the
// publisher here, with several publish windows. cmd/publisher's slow test
// measures the binary on the large municipality.
func BenchmarkFirstExport(b *testing.B) {
	for _, window := range []int{1024, 4096, 8192, 16384} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			for b.Loop() {
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
				b.ReportMetric(float64(out.Events)/time.Since(start).Seconds(), "events/s")
			}
		})
	}
}
