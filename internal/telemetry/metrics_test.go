package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/metric"
)

// A counter recorded through the meter provider is scraped at /metrics.
func TestServeMetricsExposesCounters(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tel, err := New(ctx, Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	c, _ := tel.Meter("test").Int64Counter("skolebuss.test.things")
	c.Add(ctx, 3)
	if _, err := tel.ServeMetrics(ctx, "127.0.0.1:0", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	tel.MetricsHandler().ServeHTTP(rec, mustReq(t))
	if !strings.Contains(rec.body.String(), "skolebuss_test_things_total{") || !strings.Contains(rec.body.String(), "} 3\n") {
		t.Fatalf("scrape lacks the counter:\n%s", rec.body.String())
	}
	if _, err := tel.ServeMetrics(ctx, "256.0.0.1:bad", slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a bad metrics address was accepted")
	}
}

type recorder struct {
	h    http.Header
	body strings.Builder
}

func (r *recorder) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(int)             {}

func mustReq(t *testing.T) *http.Request {
	r, err := http.NewRequest("GET", "/metrics", io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A histogram in seconds, from any meter of the provider, is scraped with
// SecondsBuckets; one in another unit keeps the SDK's boundaries.
func TestSecondsHistogramsHaveSecondsBuckets(t *testing.T) {
	ctx := context.Background()
	tel, err := New(ctx, Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	h, _ := tel.Meter("a").Float64Histogram("skolebuss.test.wait", metric.WithUnit("s"))
	h.Record(ctx, 0.3)
	other, _ := tel.Meter("b").Float64Histogram("skolebuss.test.size", metric.WithUnit("By"))
	other.Record(ctx, 3)
	rec := &recorder{}
	tel.MetricsHandler().ServeHTTP(rec, mustReq(t))
	text := rec.body.String()
	for _, b := range SecondsBuckets {
		le := strconv.FormatFloat(b, 'g', -1, 64)
		if !strings.Contains(text, `skolebuss_test_wait_seconds_bucket{`) || !strings.Contains(text, `le="`+le+`"`) {
			t.Errorf("no bucket le=%q in the scrape", le)
		}
	}
	if !strings.Contains(text, `le="0.5"} 1`) || !strings.Contains(text, `le="0.25"} 0`) {
		t.Errorf("0.3 s is not counted between 0.25 and 0.5:\n%s", text)
	}
	if strings.Contains(text, `skolebuss_test_size_bytes_bucket{`) && !strings.Contains(text, `le="7500"`) {
		t.Errorf("a histogram in bytes lost the SDK's boundaries:\n%s", text)
	}
}
