package telemetry_test

// An external test package: bus imports auth, which imports telemetry.

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

func newTelemetry(t *testing.T) (*telemetry.Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), telemetry.Config{}, slog.New(slog.DiscardHandler), telemetry.WithSpanProcessor(rec))
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
	b := bustest.Open(t)
	tel, rec := newTelemetry(t)
	tracer := tel.Tracer("test")
	tenant := "aa750693-e3ea-441b-93fe-6a71a8371afa"

	// Requester side.
	rctx, rspan := telemetry.Start(ctx, tracer, "request export", trace.SpanKindProducer, telemetry.Tenant(tenant), telemetry.Job("j-1"))
	m, err := messages.Encode(messages.ExportJob{JobID: "j-1", Tenant: tenant, Application: "skolebuss-demo",
		Reason: messages.ReasonDemand, RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	telemetry.InjectNATS(rctx, m)
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
	fctx, fspan := telemetry.Start(telemetry.ExtractNATS(ctx, got.Headers()), tracer, "fetch export", trace.SpanKindConsumer, telemetry.Tenant(tenant))
	if fspan.SpanContext().TraceID() != want {
		t.Fatalf("fetcher trace %s, requester trace %s", fspan.SpanContext().TraceID(), want)
	}
	if telemetry.TraceID(fctx) != want.String() {
		t.Errorf("telemetry.TraceID(ctx) = %q", telemetry.TraceID(fctx))
	}
	_ = got.Ack()

	// Fetcher to publisher, through watermill metadata this time.
	_, wm, err := messages.EncodeWatermill(messages.FetchedExport{JobID: "j-1", ExportID: "e-1", Tenant: tenant,
		Application: "skolebuss-demo", Object: "o", SHA256: strings.Repeat("0", 64), FetchedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	telemetry.InjectWatermill(fctx, wm)
	fspan.End()
	pctx := telemetry.ExtractWatermill(ctx, wm)
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
