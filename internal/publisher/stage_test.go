package publisher_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu/pifutest"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// emptyExport is a valid PIFU document with its properties and no records.
const emptyExport = `<?xml version="1.0" encoding="UTF-8"?>
<enterprise xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1">
  <properties lang="nb">
    <datasource>vfs@fjordvik.kommune.no</datasource>
    <target>lms-export@example.no</target>
    <type>full</type>
    <datetime>2026-08-17T07:00:00</datetime>
  </properties>
</enterprise>
`

// stage runs the publisher as the worker stage in the background.
func (e *env) stage(tp trace.TracerProvider) {
	e.t.Helper()
	wcfg := publisher.WorkerConfig()
	wcfg.Backoff = []time.Duration{100 * time.Millisecond}
	e.stageWith(tp, wcfg)
}

// stageWith is stage with the worker configuration wcfg.
func (e *env) stageWith(tp trace.TracerProvider, wcfg worker.Config) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.pub.Run(ctx, e.bus.JS, wcfg, quiet(), tp) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("stage: %v", err)
		}
	})
}

// send publishes a fetched-export message as a fetcher does.
func (e *env) send(ctx context.Context, fe messages.FetchedExport) {
	e.t.Helper()
	m, err := messages.Encode(fe)
	if err != nil {
		e.t.Fatal(err)
	}
	telemetry.InjectNATS(ctx, m)
	if _, err := e.bus.JS.PublishMsg(ctx, m); err != nil {
		e.t.Fatal(err)
	}
}

func TestDeletionThresholdHoldsAnEmptyExportUntilForced(t *testing.T) {
	pifutest.Validate(t, "the empty export", []byte(emptyExport))
	e := newEnv(t, "tiny")
	e.stage(nil)
	fe0, _ := e.export(0)
	e.send(e.ctx, fe0)
	before := e.waitVendor(fe0.ExportID)
	records := 0
	for _, n := range before.Counts {
		records += n
	}

	held := e.put("empty", []byte(emptyExport))
	from := lastSeq(t, e.bus.JS) + 1
	e.send(e.ctx, held)
	dl := waitDeadLetter(t, e)
	if dl.Reason != "deletion_held" || dl.Stage != publisher.Stage || dl.Tenant != tenant || dl.Class != "permanent" {
		t.Fatalf("dead letter %+v", dl)
	}
	want := fmt.Sprintf("it is empty and would delete all %d records", records)
	if !strings.Contains(dl.Error, want) || !strings.Contains(dl.Error, "force") {
		t.Errorf("dead letter says %q, want it to say %q and how to force it", dl.Error, want)
	}
	if n := lastSeq(t, e.bus.JS); n >= from {
		t.Errorf("a held export published %d messages", n-from+1)
	}
	if st, _ := e.vendor.Status(tenant); st.LastExport != fe0.ExportID || st.Counts["person"] == 0 {
		t.Errorf("vendor after the held export: %+v", st)
	}

	// The operator's forced replay: the dead letter's message with force.
	replay, err := messages.Decode[messages.FetchedExport](&nats.Msg{Subject: dl.Message.Subject,
		Header: nats.Header(dl.Message.Headers), Data: dl.Message.Data})
	if err != nil {
		t.Fatal(err)
	}
	replay.Force = true
	e.send(e.ctx, replay)
	after := e.waitVendor(held.ExportID)
	for en, n := range after.Counts {
		if n != 0 {
			t.Errorf("after the forced empty export the vendor has %d %s records", n, en)
		}
	}
	if after.Applied != before.Applied+records {
		t.Errorf("the forced export applied %d events, want %d deletions", after.Applied-before.Applied, records)
	}
}

func waitDeadLetter(t *testing.T, e *env) messages.DeadLetter {
	t.Helper()
	s, err := e.bus.JS.Stream(e.ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m, err := s.GetLastMsgForSubject(e.ctx, "dlq.>")
		if err == nil {
			dl, err := messages.Decode[messages.DeadLetter](&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
			if err != nil {
				t.Fatal(err)
			}
			return dl
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no dead letter")
	return messages.DeadLetter{}
}

func TestTraceContextTravelsIntoEveryEvent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), telemetry.Config{SampleRatio: 1}, quiet(), telemetry.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	e := newEnv(t, "tiny")
	e.pub, err = publisher.New(e.bus.Conn, e.bus.Stores.Exports, e.bus.Stores.Snapshots,
		publisher.Config{Diff: diffConfig(t), TracerProvider: tel.TracerProvider()})
	if err != nil {
		t.Fatal(err)
	}
	e.stage(tel.TracerProvider())

	ctx, span := tel.Tracer("test").Start(e.ctx, "fetch")
	traceID := span.SpanContext().TraceID().String()
	fe, _ := e.export(0)
	e.send(ctx, fe)
	span.End()
	e.waitVendor(fe.ExportID)

	msgs := readLMS(t, e.bus.JS, 1)
	for _, m := range msgs {
		if tp := m.msg.Header.Get("traceparent"); !strings.Contains(tp, traceID) {
			t.Fatalf("%s: traceparent %q is not of trace %s", m.msg.Subject, tp, traceID)
		}
	}
	// The span ends after the snapshot is stored, just after export.completed.
	var ended []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ended = rec.Ended(); slices.ContainsFunc(ended, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "publisher.export" }) {
			break
		}
	}
	found := false
	for _, s := range ended {
		if s.Name() != "publisher.export" {
			continue
		}
		found = true
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("publisher span in trace %s, want %s", s.SpanContext().TraceID(), traceID)
		}
		for _, a := range s.Attributes() {
			if !strings.HasPrefix(string(a.Key), "skolebuss.") {
				t.Errorf("span attribute %s is not an allowed one", a.Key)
			}
		}
	}
	if !found {
		t.Error("no publisher.export span")
	}
}

// A tenant's first export, empty, is held as the help says an empty export
// is: nothing is published and no snapshot stored until an operator forces it.
func TestEmptyFirstExportHeld(t *testing.T) {
	e := newEnv(t, "tiny")
	e.stage(nil)
	from := lastSeq(t, e.bus.JS) + 1
	e.send(e.ctx, e.put("empty-first", []byte(emptyExport)))
	dl := waitDeadLetter(t, e)
	if dl.Reason != "deletion_held" || !strings.Contains(dl.Error, "first export") {
		t.Fatalf("dead letter %+v", dl)
	}
	if n := lastSeq(t, e.bus.JS); n >= from {
		t.Errorf("a held first export published %d messages", n-from+1)
	}
}
