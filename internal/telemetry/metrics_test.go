package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
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
