package publisher

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// BenchmarkMetricsExport is the metrics' cost per export (recorded once per
// export, not per event) with the real SDK and Prometheus exporter.
func BenchmarkMetricsExport(b *testing.B) {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	ms, err := newMetrics(tel.Meter("bench"))
	if err != nil {
		b.Fatal(err)
	}
	out := Outcome{Events: 10, Counts: map[pifu.Entity]messages.Counts{}}
	for _, e := range pifu.Entities {
		out.Counts[e] = messages.Counts{Created: 1, Updated: 1, Deleted: 1}
	}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ms.export(ctx, "aa750693-e3ea-441b-93fe-6a71a8371afa", start, out, nil)
	}
}
