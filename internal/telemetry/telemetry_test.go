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
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
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

// One job is one trace: the requester's span travels in the NATS headers of
// a job published through a real JetStream server, the fetcher continues
// it, and its fetched-export message carries it on to the publisher.
func TestTraceTravelsThroughJetStream(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{Embedded: bus.EmbeddedConfig{DataDir: t.TempDir(), Port: -1}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	tel, rec := newTel(t, Config{})
	tracer := tel.Tracer("test")
	tenant := "aa750693-e3ea-441b-93fe-6a71a8371afa"

	// Requester side.
	rctx, rspan := Start(ctx, tracer, "request export", trace.SpanKindProducer, Tenant(tenant), Job("j-1"))
	m, err := messages.Encode(messages.ExportJob{JobID: "j-1", Tenant: tenant, Application: "skolebuss-demo",
		Reason: messages.ReasonDemand, RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	InjectNATS(rctx, m)
	if _, err := b.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	rspan.End()
	want := rspan.SpanContext().TraceID()

	// Fetcher side: a pull consumer on the work queue.
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamJobs, jetstream.ConsumerConfig{Durable: "fetcher", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got.Headers().Get(messages.HeaderTraceparent) == "" {
		t.Fatalf("no traceparent in %v", got.Headers())
	}
	fctx, fspan := Start(ExtractNATS(ctx, got.Headers()), tracer, "fetch export", trace.SpanKindConsumer, Tenant(tenant))
	if fspan.SpanContext().TraceID() != want {
		t.Fatalf("fetcher trace %s, requester trace %s", fspan.SpanContext().TraceID(), want)
	}
	if TraceID(fctx) != want.String() {
		t.Errorf("TraceID(ctx) = %q", TraceID(fctx))
	}
	_ = got.Ack()

	// Fetcher to publisher, through watermill metadata this time.
	_, wm, err := messages.EncodeWatermill(messages.FetchedExport{JobID: "j-1", ExportID: "e-1", Tenant: tenant,
		Application: "skolebuss-demo", Object: "o", SHA256: strings.Repeat("0", 64), FetchedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	InjectWatermill(fctx, wm)
	fspan.End()
	pctx := ExtractWatermill(ctx, wm)
	if trace.SpanContextFromContext(pctx).TraceID() != want {
		t.Errorf("publisher trace %s, want %s", trace.SpanContextFromContext(pctx).TraceID(), want)
	}
	spans := rec.Ended()
	if len(spans) != 2 || spans[1].Parent().SpanID() != rspan.SpanContext().SpanID() {
		t.Errorf("fetch span's parent is not the request span: %d spans", len(spans))
	}
	for _, s := range spans {
		for _, a := range s.Attributes() {
			if !strings.HasPrefix(string(a.Key), "skolebuss.") {
				t.Errorf("span %s has attribute %s", s.Name(), a.Key)
			}
		}
	}
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
