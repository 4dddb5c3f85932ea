package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// logBuffer collects a stage's JSON log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records are the log lines whose msg is msg.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func endedNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// A handler that always panics is retried as a transient failure and
// dead-lettered after MaxAttempts with reason "panic"; each panic's stack is
// in the log and on the message's span, and not in the dead letter.
func TestRecovererLogsTheStackAndRetries(t *testing.T) {
	js := setup(t)
	var logs logBuffer
	rec := tracetest.NewSpanRecorder()
	var calls atomic.Int32
	startWith(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		calls.Add(1)
		panicOnPurpose()
		return nil
	}, slog.New(slog.NewJSONHandler(&logs, nil)), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	publish(t, js, tenantT1, "x")
	waitFor(t, "a dead letter", 10*time.Second, func() bool { return streamMsgs(t, js, bus.StreamDLQ) == 1 })

	dl := deadLetters(t, js)[0]
	if dl.Reason != "panic" || dl.Class != "transient" || dl.Attempts != 3 || calls.Load() != 3 {
		t.Fatalf("dead letter after %d calls: %+v", calls.Load(), dl)
	}
	if !strings.Contains(dl.Error, "handler panicked: on purpose") || strings.Contains(dl.Error, "goroutine") {
		t.Errorf("dead letter's error %q: want the panic value without the stack", dl.Error)
	}
	panics := logs.records(t, "handler panicked")
	if len(panics) != 3 {
		t.Fatalf("%d panics logged, want 3", len(panics))
	}
	for _, r := range panics {
		if stack, _ := r["stack"].(string); !strings.Contains(stack, "panicOnPurpose") {
			t.Errorf("logged stack %q does not show where the handler panicked", stack)
		}
		if r["panic"] != "on purpose" || r["tenant"] != tenantT1 || r["trace_id"] == "" {
			t.Errorf("panic log %v", r)
		}
	}
	spans := endedNamed(rec, "fetch")
	if len(spans) != 3 {
		t.Fatalf("%d spans, want one per attempt", len(spans))
	}
	for _, s := range spans {
		var stack string
		for _, ev := range s.Events() {
			for _, kv := range ev.Attributes {
				if ev.Name == "panic" && kv.Key == "exception.stacktrace" {
					stack = kv.Value.AsString()
				}
			}
		}
		if !strings.Contains(stack, "panicOnPurpose") {
			t.Errorf("span without the panic's stack: events %v", s.Events())
		}
		if s.Status().Description != "panic" {
			t.Errorf("span status %+v, want the reason panic", s.Status())
		}
	}
}

func panicOnPurpose() { panic("on purpose") }

// A body naming another tenant than its subject is refused before the
// handler (and before the stage's middleware sees a success): permanent,
// dead-lettered once with reason tenant_mismatch. A body of the subject's
// tenant is handled; one that does not decode fails with its decoding
// error.
func TestTenantCheckDeadLettersAMismatch(t *testing.T) {
	js := setup(t)
	cfg := testConfig()
	cfg.PayloadTenant = func(m *message.Message) (string, error) {
		if string(m.Payload) == "garbage" {
			return "", failure.Permanentf("invalid_message", "body does not decode")
		}
		return string(m.Payload), nil
	}
	var seenByStage sync.Map // error reason the stage's middleware saw, by body
	cfg.Middleware = []message.HandlerMiddleware{func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			out, err := h(m)
			seenByStage.Store(string(m.Payload), failure.ReasonOf(err))
			return out, err
		}
	}}
	var handled sync.Map
	start(t, js, cfg, func(ctx context.Context, m *message.Message) error {
		handled.Store(string(m.Payload), Tenant(ctx))
		return nil
	})
	publish(t, js, tenantT1, tenantT2)
	publish(t, js, tenantT1, "garbage")
	publish(t, js, tenantT1, tenantT1)
	waitFor(t, "two dead letters and the matching message handled", 10*time.Second, func() bool {
		_, ok := handled.Load(tenantT1)
		return ok && streamMsgs(t, js, bus.StreamDLQ) == 2 && streamMsgs(t, js, bus.StreamJobs) == 0
	})
	if _, ok := handled.Load(tenantT2); ok {
		t.Error("the handler saw a message of tenant t2 on tenant t1's subject")
	}
	if tenant, _ := handled.Load(tenantT1); tenant != tenantT1 {
		t.Errorf("Tenant(ctx) = %v, want t1", tenant)
	}
	reasons := map[string]string{}
	for _, dl := range deadLetters(t, js) {
		reasons[string(dl.Message.Data)] = dl.Reason
		if dl.Class != "permanent" || dl.Attempts != 1 || dl.Tenant != tenantT1 {
			t.Errorf("dead letter %+v", dl)
		}
		if string(dl.Message.Data) == tenantT2 && (!strings.Contains(dl.Error, "tenant "+tenantT2) || !strings.Contains(dl.Error, "tenant "+tenantT1)) {
			t.Errorf("dead letter's error %q does not name both tenants", dl.Error)
		}
	}
	if reasons[tenantT2] != "tenant_mismatch" || reasons["garbage"] != "invalid_message" {
		t.Errorf("dead letters' reasons %v", reasons)
	}
	if r, _ := seenByStage.Load(tenantT2); r != "tenant_mismatch" {
		t.Errorf("the stage's middleware saw %q for the mismatch, want tenant_mismatch", r)
	}
}

// The message's span continues the trace in its headers: a consumer span
// named SpanName, child of the sender's span, in the handler's context,
// with tenant, stage and attempt, and the error's reason as its status.
func TestTracingContinuesTheTraceFromTheHeaders(t *testing.T) {
	js := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg := testConfig()
	cfg.SpanName = "fetch export"
	var inHandler atomic.Value
	startWith(t, js, cfg, func(ctx context.Context, m *message.Message) error {
		inHandler.Store(trace.SpanContextFromContext(ctx))
		return failure.Permanentf("unknown_application", "no such application")
	}, nil, tp)

	pctx, sender := tp.Tracer("test").Start(context.Background(), "request export")
	msg := &nats.Msg{Subject: "jobs.export." + tenantT1, Data: []byte("x")}
	telemetry.InjectNATS(pctx, msg)
	sender.End()
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message's span", 10*time.Second, func() bool { return len(endedNamed(rec, "fetch export")) == 1 })
	s := endedNamed(rec, "fetch export")[0]
	if s.Parent().SpanID() != sender.SpanContext().SpanID() || s.SpanContext().TraceID() != sender.SpanContext().TraceID() {
		t.Errorf("span with parent %s is not the child of the sender's span %s", s.Parent().SpanID(), sender.SpanContext().SpanID())
	}
	if got, _ := inHandler.Load().(trace.SpanContext); got.SpanID() != s.SpanContext().SpanID() {
		t.Errorf("the handler's context has span %s, want the message's %s", got.SpanID(), s.SpanContext().SpanID())
	}
	if s.SpanKind() != trace.SpanKindConsumer || s.Status().Description != "unknown_application" {
		t.Errorf("span kind %s, status %+v", s.SpanKind(), s.Status())
	}
	attrs := attribute.NewSet(s.Attributes()...)
	for k, want := range map[attribute.Key]string{telemetry.KeyTenant: tenantT1, telemetry.KeyStage: "fetch", telemetry.KeyErrorReason: "unknown_application"} {
		if v, _ := attrs.Value(k); v.AsString() != want {
			t.Errorf("span attribute %s = %q, want %q", k, v.Emit(), want)
		}
	}
	if v, _ := attrs.Value(telemetry.KeyCountPrefix + "attempt"); v.AsInt64() != 1 {
		t.Errorf("span attempt %d", v.AsInt64())
	}
	waitFor(t, "the dead letter", 5*time.Second, func() bool { return streamMsgs(t, js, bus.StreamDLQ) == 1 })
	if dl := deadLetters(t, js)[0]; dl.TraceID != sender.SpanContext().TraceID().String() {
		t.Errorf("dead letter in trace %s, the sender's is %s", dl.TraceID, sender.SpanContext().TraceID())
	}
}

// skolebuss.stage.messages counts each delivery by the outcome the
// classification settled on, and skolebuss.stage.duration measures each.
func TestMetricsCountOutcomes(t *testing.T) {
	js := setup(t)
	reader := sdkmetric.NewManualReader()
	cfg := testConfig()
	cfg.Meter = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var mu sync.Mutex
	calls := map[string]int{}
	start(t, js, cfg, func(ctx context.Context, m *message.Message) error {
		mu.Lock()
		calls[string(m.Payload)]++
		n := calls[string(m.Payload)]
		mu.Unlock()
		switch {
		case string(m.Payload) == "permanent":
			return failure.Permanentf("invalid_scope", "application lacks scope")
		case string(m.Payload) == "transient" && n == 1:
			return failure.Transientf("http_502", "bad gateway")
		case string(m.Payload) == "throttled" && n == 1:
			return &failure.Error{Class: failure.Throttled, Reason: "http_429", RetryAfter: 100 * time.Millisecond}
		case string(m.Payload) == "canceled" && n == 1:
			return failure.New(failure.Canceled, "canceled", context.Canceled)
		}
		return nil
	})
	for _, body := range []string{"ok", "permanent", "transient", "throttled", "canceled"} {
		publish(t, js, tenantT1, body)
	}
	want := map[string]int64{"ok": 4, "dead_lettered": 1, "retried": 1, "throttled": 1, "handed_back": 1}
	var got map[string]int64
	var measured uint64
	waitFor(t, "every outcome counted", 15*time.Second, func() bool {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		got, measured = map[string]int64{}, 0
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Sum[int64]:
					if m.Name != "skolebuss.stage.messages" {
						continue
					}
					for _, dp := range d.DataPoints {
						if stage, _ := dp.Attributes.Value("stage"); stage.AsString() != "fetch" {
							t.Fatalf("stage %q", stage.Emit())
						}
						outcome, _ := dp.Attributes.Value("outcome")
						got[outcome.AsString()] += dp.Value
					}
				case metricdata.Histogram[float64]:
					if m.Name == "skolebuss.stage.duration" {
						for _, dp := range d.DataPoints {
							measured += dp.Count
						}
					}
				}
			}
		}
		return len(got) == len(want) && got["ok"] == want["ok"]
	})
	for k, n := range want {
		if got[k] != n {
			t.Errorf("skolebuss.stage.messages{outcome=%s} = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if measured != 8 {
		t.Errorf("skolebuss.stage.duration measured %d deliveries, want 8", measured)
	}
}
