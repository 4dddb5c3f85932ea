package fetcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// A job becomes the sandbox's export in the object store, byte for byte,
// and one FetchedExport that continues the job's trace.
func TestJobStoredAndAnnounced(t *testing.T) {
	e := newEnv(t, smallSandbox())
	want := e.direct(t, fjordvik)
	cfg := e.config(nil)
	e.run(t, cfg, 1)
	job := e.request(t, fjordvik, demoApp, "")

	waitFor(t, 15*time.Second, "the fetched export", func() bool { return len(e.msgs(t, bus.StreamExports)) == 1 })
	m := e.msgs(t, bus.StreamExports)[0]
	fes := e.fetchedExports(t)
	fe := fes[0]
	sum := sha256.Sum256(want)
	if fe.JobID != job.Job.JobID || fe.Tenant != fjordvik || fe.Size != int64(len(want)) || fe.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("fetched export %+v; want job %s, %d bytes, sha256 %x", fe, job.Job.JobID, len(want), sum)
	}
	if fe.Object != ObjectName(job.Job) || fe.APIVersion == "" {
		t.Errorf("object %q api version %q", fe.Object, fe.APIVersion)
	}
	if got := m.Header.Get(messages.HeaderMsgID); got != "fetched."+job.Job.Tenant+"."+job.Job.JobID {
		t.Errorf("Nats-Msg-Id %q", got)
	}
	stored, err := e.bus.Stores.Exports.GetBytes(context.Background(), fe.Object)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, want) {
		t.Errorf("stored %d bytes differ from the %d the sandbox serves", len(stored), len(want))
	}
	if got := telemetry.TraceID(telemetry.ExtractNATS(context.Background(), m.Header)); got != job.TraceID || got == "" {
		t.Errorf("fetched export's trace %q, want the job's %q", got, job.TraceID)
	}
	// The job is acked: the work queue is empty.
	waitFor(t, 5*time.Second, "the job to be acked", func() bool { return len(e.msgs(t, bus.StreamJobs)) == 0 })

	// The fetch span is in the job's trace and carries ids only.
	var found bool
	for _, s := range e.spans.Ended() {
		if s.Name() != "fetch export" {
			continue
		}
		found = true
		if s.SpanContext().TraceID().String() != job.TraceID {
			t.Errorf("fetch span in trace %s, want %s", s.SpanContext().TraceID(), job.TraceID)
		}
		for _, kv := range s.Attributes() {
			if !strings.HasPrefix(string(kv.Key), "skolebuss.") {
				t.Errorf("fetch span attribute %s", kv.Key)
			}
		}
	}
	if !found {
		t.Error("no fetch span")
	}

	// Metrics: one ok job, its bytes, the quota approach of the application.
	rm, err := e.tel.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := sumInt(rm, MetricJobs, "outcome", "ok"); n != 1 {
		t.Errorf("%s{outcome=ok} = %d, want 1", MetricJobs, n)
	}
	if n := sumInt(rm, MetricBytes, "", ""); n != int64(len(want)) {
		t.Errorf("%s = %d, want %d", MetricBytes, n, len(want))
	}
	if n := sumInt(rm, MetricQuotaUsed, "period", "daily"); n != 1 {
		t.Errorf("%s{period=daily} = %d, want the one request", MetricQuotaUsed, n)
	}
	if !hasMetric(rm, MetricQuotaUsed) || !hasMetric(rm, MetricDuration) {
		t.Errorf("missing quota or duration metrics")
	}
}

// A redo of a job whose export is stored (a fetcher died before acking)
// announces it again without asking the upstream, and JetStream keeps one
// FetchedExport.
func TestRedoAnnouncesOnce(t *testing.T) {
	e := newEnv(t, smallSandbox())
	f, err := New(e.config(nil), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	job := messages.ExportJob{JobID: "redo-1", Tenant: maaneby, Application: demoApp, Reason: messages.ReasonDemand, RequestedAt: time.Now()}
	// Through the stage's metrics middleware, as the worker runs Handle.
	handle := f.countJobs(func(m *message.Message) ([]*message.Message, error) { return nil, f.Handle(m.Context(), m) })
	for i := range 3 {
		_, m, err := messages.EncodeWatermill(job)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := handle(m); err != nil {
			t.Fatalf("handle %d: %v", i, err)
		}
	}
	if n := len(e.fetchedExports(t)); n != 1 {
		t.Errorf("%d fetched exports after three handlings, want 1", n)
	}
	if st := e.stats(t).Applications[sandbox.DemoClientID]; st.Requests != 1 {
		t.Errorf("upstream asked %d times, want once", st.Requests)
	}
	rm, _ := e.tel.Collect(context.Background())
	if n := sumInt(rm, MetricJobs, "outcome", "reused"); n != 2 {
		t.Errorf("reused jobs %d, want 2", n)
	}
}

// A permanent upstream error sends the job to the dead-letter stream at
// once, with its reason, one attempt and the job's trace id, and neither the
// client secret nor any token in it.
func TestPermanentErrorDeadLettered(t *testing.T) {
	e := newEnv(t, smallSandbox())
	e.run(t, e.config(nil), 1)
	forbidden := e.request(t, fjordvik, "noscope", "job-403")   // token without the export scope: 403
	badScope := e.request(t, fjordvik, "badscope", "job-scope") // scope the client may not have: invalid_scope
	unknown := e.request(t, fjordvik, "nosuchapp", "job-noapp") // an application the fetcher does not know
	want := map[string]struct{ reason, trace string }{
		"job-403":   {"forbidden", forbidden.TraceID},
		"job-scope": {"invalid_scope", badScope.TraceID},
		"job-noapp": {"unknown_application", unknown.TraceID},
	}
	waitFor(t, 15*time.Second, "three dead letters", func() bool { return len(e.msgs(t, bus.StreamDLQ)) == 3 })
	raw := e.msgs(t, bus.StreamDLQ)
	for i, dl := range e.deadLetters(t) {
		var job messages.ExportJob
		if err := jsonUnmarshalJob(dl, &job); err != nil {
			t.Fatal(err)
		}
		w := want[job.JobID]
		if dl.Reason != w.reason || dl.Class != "permanent" || dl.Attempts != 1 || dl.TraceID != w.trace || dl.Stage != Stage || dl.Tenant != fjordvik {
			t.Errorf("dead letter of %s: reason %q class %q attempts %d trace %q stage %q; want %q, permanent, 1, %q",
				job.JobID, dl.Reason, dl.Class, dl.Attempts, dl.TraceID, dl.Stage, w.reason, w.trace)
		}
		if raw[i].Subject != "dlq.fetch."+fjordvik {
			t.Errorf("dead letter subject %s", raw[i].Subject)
		}
		blob := append([]byte(nil), raw[i].Data...)
		for k, vs := range raw[i].Header {
			blob = append(blob, k...)
			for _, v := range vs {
				blob = append(blob, v...)
			}
		}
		secrets := append([]string{sandbox.DemoNoScopeClientSecret, sandbox.DemoClientSecret}, e.tokens.Issued()...)
		for _, s := range secrets {
			if bytes.Contains(blob, []byte(s)) {
				t.Errorf("dead letter of %s contains a secret or token", job.JobID)
			}
		}
	}
	if len(e.tokens.Issued()) == 0 {
		t.Error("no token was issued: the 403 case did not reach the API")
	}
	if n := len(e.fetchedExports(t)); n != 0 {
		t.Errorf("%d fetched exports for refused jobs", n)
	}
}

func jsonUnmarshalJob(dl messages.DeadLetter, job *messages.ExportJob) error {
	m := natsMsg(dl.Message.Subject, dl.Message.Headers, dl.Message.Data)
	j, err := messages.Decode[messages.ExportJob](m)
	*job = j
	return err
}

// sumInt sums the int64 sum or gauge points of a metric whose attribute key
// has value (key "" for all points).
func sumInt(rm metricdata.ResourceMetrics, name, key, value string) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			var pts []metricdata.DataPoint[int64]
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				pts = d.DataPoints
			case metricdata.Gauge[int64]:
				pts = d.DataPoints
			}
			for _, p := range pts {
				if v, ok := p.Attributes.Value(attrKey(key)); key == "" || (ok && v.AsString() == value) {
					n += p.Value
				}
			}
		}
	}
	return n
}

func hasMetric(rm metricdata.ResourceMetrics, name string) bool {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

// A forced replay's job (messages.HeaderForce) yields a FetchedExport with Force set,
// which the publisher reads to pass its deletion threshold.
func TestForcedJobForcesExport(t *testing.T) {
	e := newEnv(t, smallSandbox())
	f, err := New(e.config(nil), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	job := messages.ExportJob{JobID: "replay-7", Tenant: fjordvik, Application: demoApp, Reason: messages.ReasonReplay,
		ReplayOf: "x", RequestedAt: time.Now()}
	_, m, err := messages.EncodeWatermill(job)
	if err != nil {
		t.Fatal(err)
	}
	m.Metadata.Set(messages.HeaderForce, messages.ForceValue)
	if err := f.Handle(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	fes := e.fetchedExports(t)
	if len(fes) != 1 || !fes[0].Force {
		t.Errorf("fetched exports %+v, want one with Force", fes)
	}
}
