package publisher_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// failingGets is a snapshots store that is away: every Get fails as a lost
// connection does.
type failingGets struct{ publisher.Objects }

func (failingGets) Get(context.Context, string, ...jetstream.GetObjectOpt) (jetstream.ObjectResult, error) {
	return nil, nats.ErrConnectionClosed
}

// TestMetricsCountWhatThePublisherDid runs exports of every outcome through
// publishers that share one in-process reader and checks each instrument
// against what the LMS stream and the publisher say happened.
func TestMetricsCountWhatThePublisherDid(t *testing.T) {
	e := newEnv(t, "tiny")
	tel, err := telemetry.New(e.ctx, telemetry.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	cfg := publisher.Config{Diff: diffConfig(t), Logger: quiet(), Meter: tel.MeterProvider()}
	pub, err := publisher.New(e.bus.Conn, e.bus.Stores.Exports, e.bus.Stores.Snapshots, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.pub = pub
	start := time.Now().Unix()
	// Each export through the stage's metrics middleware, as the worker
	// runs the stage.
	process := func(fe messages.FetchedExport) publisher.Outcome {
		t.Helper()
		out, err := pub.HandleCounted(e.ctx, fe)
		if err != nil {
			t.Fatalf("process %s: %v", fe.ExportID, err)
		}
		e.waitVendor(fe.ExportID)
		return out
	}

	fe0, _ := e.export(0) // applied: every record created
	process(fe0)
	fe1, doc1 := e.export(1) // applied: creations, updates and deletions
	process(fe1)
	again := e.put("again", doc1) // unchanged: the same roster again
	if out := process(again); out.Events != 0 {
		t.Fatalf("the same roster again published %d events", out.Events)
	}
	if out, err := pub.HandleCounted(e.ctx, again); err != nil || !out.AlreadyApplied { // unchanged: a redelivery
		t.Fatalf("redelivery: %+v, %v", out, err)
	}
	appliedAt := time.Now().Unix()

	if _, err := pub.HandleCounted(e.ctx, e.put("empty", []byte(emptyExport))); failure.ReasonOf(err) != "deletion_held" {
		t.Fatalf("empty export: %v, want it held", err)
	}
	bad := bytes.Replace(doc1, []byte("</person>"), []byte("</persn>"), 1)
	if _, err := pub.HandleCounted(e.ctx, e.put("bad", bad)); !failure.IsPermanent(err) {
		t.Fatalf("malformed export: %v, want a permanent error", err)
	}
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := pub.HandleCounted(cancelled, e.put("cancelled", doc1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Another tenant, whose snapshots store is away: failed, and never
	// applied.
	away, err := publisher.New(e.bus.Conn, e.bus.Stores.Exports, failingGets{e.bus.Stores.Snapshots}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const other = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	feAway := e.put("away", doc1)
	feAway.Tenant = other
	if _, err := away.HandleCounted(e.ctx, feAway); err == nil || failure.ClassOf(err) != failure.Transient {
		t.Fatalf("snapshots away: %v, want a transient error", err)
	}

	rm, err := tel.Collect(e.ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Events: what the LMS stream holds, per entity and op.
	wantEvents := map[string]int64{}
	for _, m := range readLMS(t, e.bus.JS, 1) {
		if !m.subject.IsBoundary() {
			wantEvents[fmt.Sprintf("entity=%s,op=%s", m.subject.Entity, m.subject.Op)]++
		}
	}
	if len(wantEvents) < 6 {
		t.Fatalf("the exports published only %v: too few kinds of change to test", wantEvents)
	}
	if got := sums(t, rm, publisher.MetricEvents); !maps.Equal(got, wantEvents) {
		t.Errorf("%s = %v, the LMS stream holds %v", publisher.MetricEvents, got, wantEvents)
	}

	wantExports := map[string]int64{
		"outcome=applied,reason=,skolebuss.tenant=" + tenant:                                                 2,
		"outcome=unchanged,reason=,skolebuss.tenant=" + tenant:                                               2,
		"outcome=held,reason=deletion_held,skolebuss.tenant=" + tenant:                                       1,
		"outcome=invalid,reason=invalid_document,skolebuss.tenant=" + tenant:                                 1,
		"outcome=failed,reason=" + failure.ReasonOf(nats.ErrConnectionClosed) + ",skolebuss.tenant=" + other: 1,
	}
	if got := sums(t, rm, publisher.MetricExports); !maps.Equal(got, wantExports) {
		t.Errorf("%s = %v, want %v (a cancelled export is not counted)", publisher.MetricExports, got, wantExports)
	}

	h := find(t, rm, publisher.MetricDuration)
	hist, ok := h.Data.(metricdata.Histogram[float64])
	if !ok || h.Unit != "s" {
		t.Fatalf("%s is %T in %q, want a histogram in s", publisher.MetricDuration, h.Data, h.Unit)
	}
	counts := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		counts[key(dp.Attributes)] = dp.Count
		if max, _ := dp.Max.Value(); dp.Sum <= 0 || max > 60 {
			t.Errorf("%s %s: sum %gs, max %gs", publisher.MetricDuration, key(dp.Attributes), dp.Sum, max)
		}
	}
	if want := map[string]uint64{"outcome=applied": 2, "outcome=unchanged": 2, "outcome=held": 1, "outcome=invalid": 1, "outcome=failed": 1}; !maps.Equal(counts, want) {
		t.Errorf("%s counts %v, want %v", publisher.MetricDuration, counts, want)
	}

	g := find(t, rm, publisher.MetricLastApplied)
	gauge, ok := g.Data.(metricdata.Gauge[int64])
	if !ok || g.Unit != "s" {
		t.Fatalf("%s is %T in %q, want an int64 gauge in s", publisher.MetricLastApplied, g.Data, g.Unit)
	}
	if len(gauge.DataPoints) != 1 || key(gauge.DataPoints[0].Attributes) != "skolebuss.tenant="+tenant {
		t.Fatalf("%s: %v, want one point, for tenant %s only (the other never applied one)", publisher.MetricLastApplied, gauge.DataPoints, tenant)
	}
	if v := gauge.DataPoints[0].Value; v < start || v > appliedAt {
		t.Errorf("%s = %d, want the time of the last applied export, in %d..%d", publisher.MetricLastApplied, v, start, appliedAt)
	}
}

func find(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return metricdata.Metrics{}
}

// sums is an int64 counter's values by attribute set.
func sums(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	m := find(t, rm, name)
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !s.IsMonotonic {
		t.Fatalf("%s is %T, want a counter", name, m.Data)
	}
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		out[key(dp.Attributes)] = dp.Value
	}
	return out
}

// key is an attribute set as k=v pairs, sorted by key.
func key(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
