package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/failure"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTel(t *testing.T, cfg Config) (*Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := New(context.Background(), cfg, quiet(), WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel, rec
}

func TestMiddleware(t *testing.T) {
	tel, rec := newTel(t, Config{})
	tracer := tel.Tracer("test")
	pctx, parent := tracer.Start(context.Background(), "producer")
	in := message.NewMessage("1", nil)
	InjectWatermill(pctx, in)
	parent.End()
	h := Middleware(tracer, "consume", func(m *message.Message) []Attr { return []Attr{Job(m.UUID)} })(
		func(m *message.Message) ([]*message.Message, error) {
			if trace.SpanContextFromContext(m.Context()).TraceID() != parent.SpanContext().TraceID() {
				t.Error("handler context is not in the sender's trace")
			}
			return []*message.Message{message.NewMessage("2", nil)}, failure.Permanentf("invalid_tenant", "tenant not linked")
		})
	out, err := h(in)
	if err == nil || len(out) != 1 {
		t.Fatal("handler result lost")
	}
	if ExtractWatermill(context.Background(), out[0]) == context.Background() ||
		trace.SpanContextFromContext(ExtractWatermill(context.Background(), out[0])).TraceID() != parent.SpanContext().TraceID() {
		t.Error("produced message does not carry the trace")
	}
	spans := rec.Ended()
	last := spans[len(spans)-1]
	if last.Name() != "consume" || last.Status().Description != "invalid_tenant" {
		t.Errorf("span %s status %+v", last.Name(), last.Status())
	}
}

func TestCountNamesAreWords(t *testing.T) {
	for _, bad := range []string{"", "Person Name", "kari.nordmann", "nin=01010112345"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Count(%q) accepted", bad)
				}
			}()
			Count(bad, 1)
		}()
	}
	if kv := KeyValues(Count("person_created", 3)); kv[0].Key != "skolebuss.count.person_created" || kv[0].Value.AsInt64() != 3 {
		t.Errorf("count %v", kv)
	}
}

// Shutdown flushes buffered spans to the OTLP/HTTP endpoint.
func TestShutdownFlushesToOTLP(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/traces" && r.Method == http.MethodPost {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	tel, err := New(context.Background(), Config{OTLPEndpoint: srv.URL, ServiceName: "skolebuss-test", SampleRatio: 1}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer("test").Start(context.Background(), "job")
	span.End()
	if posts.Load() != 0 {
		t.Fatal("exported before the batch was due; the test proves nothing")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Error("Shutdown did not flush the span")
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []Config{{SampleRatio: 1.5}, {SampleRatio: -0.1}, {OTLPEndpoint: "otel:4318", SampleRatio: 1}} {
		if _, err := New(context.Background(), c, quiet()); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	// Sample ratio 0 samples nothing, and the trace context still travels.
	tel, err := New(context.Background(), Config{ServiceName: "x", SampleRatio: 0}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer("t").Start(context.Background(), "s")
	if span.SpanContext().IsSampled() {
		t.Error("sampled at ratio 0")
	}
	m := &nats.Msg{Subject: "x"}
	InjectNATS(trace.ContextWithSpan(context.Background(), span), m)
	if !strings.HasSuffix(m.Header.Get("traceparent"), "-00") {
		t.Errorf("traceparent %q", m.Header.Get("traceparent"))
	}
	if err := tel.Shutdown(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}
