package publisher_test

import (
	"testing"
	"time"
)

// BenchmarkFirstExport publishes a medium municipality's first export (about
// 40,000 events) to an embedded server, which shares the CPU with the
// publisher here; cmd/publisher's slow test measures the binary on the large
// one.
func BenchmarkFirstExport(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		e := newEnvVendor(b, "medium", false)
		fe, _ := e.export(0)
		b.StartTimer()
		start := time.Now()
		out, err := e.pub.Process(e.ctx, fe)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(out.Events)/time.Since(start).Seconds(), "events/s")
	}
}
