package requester

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

const (
	tenantA = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	tenantB = "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"
	app     = "skolebuss-demo"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// streamMsgs returns every message of stream, in order.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	return bustest.Msgs(t, js, stream)
}

func jobsOf(t *testing.T, js jetstream.JetStream) []messages.ExportJob {
	t.Helper()
	var jobs []messages.ExportJob
	for _, m := range streamMsgs(t, js, bus.StreamJobs) {
		j, err := messages.Decode[messages.ExportJob](&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatalf("job %d: %v", m.Sequence, err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

func newRequester(t *testing.T, js jetstream.JetStream, cfg Config, opts ...sdktrace.TracerProviderOption) *Requester {
	t.Helper()
	r, err := New(js, cfg, quiet(), sdktrace.NewTracerProvider(opts...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSlotAndFireTime(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 47, 12, 0, time.UTC)
	if got, want := Slot(at, time.Hour), time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Slot(1h) = %v, want %v", got, want)
	}
	if got, want := Slot(at, 10*time.Minute), time.Date(2026, 3, 4, 10, 40, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Slot(10m) = %v, want %v", got, want)
	}
	// In another zone the slot is the same instant.
	oslo := time.FixedZone("CET", 3600)
	if got := Slot(at.In(oslo), time.Hour); !got.Equal(Slot(at, time.Hour)) {
		t.Errorf("Slot depends on the zone: %v", got)
	}
	slot := Slot(at, time.Hour)
	spread := map[time.Duration]bool{}
	for _, tenant := range []string{tenantA, tenantB, "t1", "t2", "t3", "t4"} {
		f := FireTime(tenant, slot, 5*time.Minute)
		if f.Before(slot) || !f.Before(slot.Add(5*time.Minute)) {
			t.Errorf("FireTime(%s) = %v, outside [slot, slot+jitter)", tenant, f)
		}
		if !f.Equal(FireTime(tenant, slot, 5*time.Minute)) {
			t.Errorf("FireTime(%s) is not deterministic", tenant)
		}
		spread[f.Sub(slot)] = true
	}
	if len(spread) < 4 {
		t.Errorf("jitter does not spread tenants: %d distinct offsets of 6", len(spread))
	}
	if f := FireTime(tenantA, slot, 0); !f.Equal(slot) {
		t.Errorf("FireTime without jitter = %v, want the slot", f)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"hostile tenant":    {Tenants: []Tenant{{ID: "a.>", Application: app}}},
		"twice":             {Tenants: []Tenant{{ID: tenantA, Application: app}, {ID: tenantA, Application: app}}},
		"no application":    {Tenants: []Tenant{{ID: tenantA}}},
		"jitter > interval": {Tenants: []Tenant{{ID: tenantA, Application: app, Interval: time.Minute, Jitter: time.Minute}}},
		"tiny interval":     {Tenants: []Tenant{{ID: tenantA, Application: app, Interval: time.Millisecond}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Two requesters (replicas) that schedule the same slots store one job per
// tenant and slot.
func TestReplicasCollapseToOneJobPerSlot(t *testing.T) {
	b := bustest.Open(t)
	cfg := Config{Tenants: []Tenant{
		{ID: tenantA, Application: app, Interval: time.Second, Jitter: 300 * time.Millisecond},
		{ID: tenantB, Application: app, Interval: time.Second},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	for range 2 {
		r := newRequester(t, b.JS, cfg)
		go func() { done <- r.Run(ctx) }()
	}
	// Wait until each tenant has three slots' jobs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		per := map[string]int{}
		for _, j := range jobsOf(t, b.JS) {
			per[j.Tenant]++
		}
		if per[tenantA] >= 3 && per[tenantB] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs per tenant after 10s: %v", per)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, j := range jobsOf(t, b.JS) {
		key := j.Tenant + " " + j.Slot.Format(time.RFC3339Nano)
		if seen[key] {
			t.Errorf("two jobs for tenant %s slot %s", j.Tenant, j.Slot)
		}
		seen[key] = true
		if j.Reason != messages.ReasonSchedule || !j.Slot.Equal(Slot(j.Slot, time.Second)) {
			t.Errorf("job %s: reason %s slot %s", j.JobID, j.Reason, j.Slot)
		}
		if j.Tenant == tenantA && j.RequestedAt.Before(j.Slot) {
			t.Errorf("job %s requested at %s before its slot %s", j.JobID, j.RequestedAt, j.Slot)
		}
	}

	// The same slot published by both replicas directly: one job, the
	// second is reported as a duplicate.
	r1, r2 := newRequester(t, b.JS, cfg), newRequester(t, b.JS, cfg)
	slot := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	res1, err := r1.scheduled(context.Background(), cfg.Tenants[0], slot)
	if err != nil {
		t.Fatal(err)
	}
	res2, err := r2.scheduled(context.Background(), cfg.Tenants[0], slot)
	if err != nil {
		t.Fatal(err)
	}
	if res1.Duplicate || !res2.Duplicate || res1.Seq != res2.Seq {
		t.Errorf("same slot twice: first %+v, second %+v; want one stored job", res1, res2)
	}
}

func TestRequestNow(t *testing.T) {
	b := bustest.Open(t)
	rec := tracetest.NewSpanRecorder()
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	cfg := Config{
		Tenants: []Tenant{{ID: tenantA, Application: app}},
		Now:     func() time.Time { return now },
	}
	r := newRequester(t, b.JS, cfg, sdktrace.WithSpanProcessor(rec))
	ctx := context.Background()

	for _, bad := range []string{"a.b", "*", ">", "x y", "ten\nant", strings.Repeat("x", 65), ""} {
		_, err := r.RequestNow(ctx, bad, "")
		if !errors.Is(err, messages.ErrInvalidToken) {
			t.Errorf("tenant %q: err %v, want ErrInvalidToken", bad, err)
		}
	}
	if _, err := r.RequestNow(ctx, tenantB, ""); !errors.Is(err, ErrUnknownTenant) || !strings.Contains(err.Error(), tenantB) {
		t.Errorf("unknown tenant: err %v", err)
	}
	if _, err := r.RequestNow(ctx, tenantA, "bad.id"); !errors.Is(err, messages.ErrInvalidToken) {
		t.Errorf("hostile job id: err %v", err)
	}
	if n := len(jobsOf(t, b.JS)); n != 0 {
		t.Fatalf("%d jobs stored after refused requests", n)
	}

	first, err := r.RequestNow(ctx, tenantA, "")
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second) // the same minute
	second, err := r.RequestNow(ctx, tenantA, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "demand-" + tenantA + "-20260506T0708"; first.Job.JobID != want {
		t.Errorf("job id %q, want %q", first.Job.JobID, want)
	}
	if first.Duplicate || !second.Duplicate {
		t.Errorf("two requests in one minute: duplicate %v, %v; want false, true", first.Duplicate, second.Duplicate)
	}
	now = now.Add(time.Minute)
	third, err := r.RequestNow(ctx, tenantA, "")
	if err != nil || third.Duplicate {
		t.Fatalf("next minute: %+v, %v", third, err)
	}
	explicit, err := r.RequestNow(ctx, tenantA, "ops-42")
	if err != nil || explicit.Job.JobID != "ops-42" {
		t.Fatalf("explicit id: %+v, %v", explicit, err)
	}

	msgs := streamMsgs(t, b.JS, bus.StreamJobs)
	if len(msgs) != 3 {
		t.Fatalf("%d jobs stored, want 3", len(msgs))
	}
	// The trace starts here: the job carries the requester span's context.
	spans := rec.Ended()
	if len(spans) == 0 {
		t.Fatal("no span recorded")
	}
	m := msgs[0]
	ctxIn := telemetry.ExtractNATS(context.Background(), m.Header)
	if got, want := telemetry.TraceID(ctxIn), spans[0].SpanContext().TraceID().String(); got != want {
		t.Errorf("job's trace id %q, want the request span's %q", got, want)
	}
	if m.Header.Get(messages.HeaderMsgID) != "job."+first.Job.Tenant+"."+first.Job.JobID {
		t.Errorf("Nats-Msg-Id %q", m.Header.Get(messages.HeaderMsgID))
	}
	for _, kv := range spans[0].Attributes() {
		if !strings.HasPrefix(string(kv.Key), "skolebuss.") {
			t.Errorf("span attribute %s is not one of ours", kv.Key)
		}
	}
}

// TestSameJobIDForTwoTenants: an operator's job id is the tenant's own; the
// same id for another tenant is another job, not a duplicate.
func TestSameJobIDForTwoTenants(t *testing.T) {
	b := bustest.Open(t)
	r := newRequester(t, b.JS, Config{Tenants: []Tenant{{ID: tenantA, Application: app}, {ID: tenantB, Application: app}}})
	ctx := context.Background()
	for _, tenant := range []string{tenantA, tenantB} {
		got, err := r.RequestNow(ctx, tenant, "nightly")
		if err != nil || got.Duplicate {
			t.Fatalf("tenant %s, job id nightly: %+v, %v", tenant, got, err)
		}
	}
	if again, err := r.RequestNow(ctx, tenantB, "nightly"); err != nil || !again.Duplicate {
		t.Errorf("the same tenant and id again: %+v, %v; want a duplicate", again, err)
	}
	if n := len(streamMsgs(t, b.JS, bus.StreamJobs)); n != 2 {
		t.Errorf("%d jobs stored, want 2", n)
	}
}
