package fanout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// mismatches is the exports healed by every stage run of the world.
func (w *world) mismatches() int64 {
	var n int64
	for _, f := range w.stages {
		n += f.Mismatches()
	}
	return n
}

// deleteChange deletes from the LMS stream the first change event of the
// export exportID whose subject ends in suffix, as an OS crash that loses
// the stream's tail loses one, and returns its key.
func (w *world) deleteChange(t *testing.T, tenant, exportID, suffix string) string {
	t.Helper()
	ctx := context.Background()
	for _, m := range bustest.Msgs(t, w.b.JS, bus.StreamLMS) {
		if !strings.HasPrefix(m.Subject, "lms."+tenant+".") || !strings.HasSuffix(m.Subject, suffix) {
			continue
		}
		ev, err := messages.Decode[messages.Event](bustest.NATSMsg(m))
		if err != nil || ev.ExportID != exportID {
			continue
		}
		s, err := w.b.JS.Stream(ctx, bus.StreamLMS)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteMsg(ctx, m.Sequence); err != nil {
			t.Fatal(err)
		}
		return ev.Key
	}
	t.Fatalf("no %s change event of %s", suffix, exportID)
	return ""
}

// The fan-out keeps the canonical state's checksum beside each vendor's:
// a join's resync sets it from the export resynced, each export's change
// events move it, and the export.completed's checksum must be where they
// lead. A change event lost from the LMS stream (an OS crash with the
// default flush) makes them differ: the vendors get a resync of the
// tenant's state instead of the export, and their copies are the truth.
// The exports whose events are whole never trigger it.
func TestLostCanonicalEventHealsTheVendors(t *testing.T) {
	preset := "small"
	if testing.Short() {
		preset = "tiny"
	}
	w := newBareWorld(t, preset)
	tel, err := telemetry.New(context.Background(), telemetry.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	w.meter = tel.MeterProvider()
	w.publishSettled(t, tenantA, 0)
	stop := w.run(t, fanout.Config{})
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 1)
		w.checkTruth(t, v, tenantA, 0, got[0], true) // the join
	}
	w.publishSettled(t, tenantA, 1)
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 2)
		w.checkTruth(t, v, tenantA, 1, got[1], false)
	}
	if n := w.mismatches(); n != 0 {
		t.Fatalf("%d mismatches for whole exports", n)
	}
	stop()

	// Generation 2 published and settled with one change event gone from
	// the stream before the fan-out reads it.
	w.runWithALostChange(t, 2)
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 3)
		w.checkTruth(t, v, tenantA, 2, got[2], true)
		if len(got) != 3 {
			t.Errorf("%s: %d deliveries, want 3 (the broken export not delivered)", v, len(got))
		}
	}
	if n := w.mismatches(); n != 2 {
		t.Errorf("%d mismatches, want 2 (one per vendor of the tenant)", n)
	}
	rm, err := tel.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == fanout.MetricMismatches {
				for _, dp := range s.DataPoints {
					v, _ := dp.Attributes.Value("vendor")
					tn, _ := dp.Attributes.Value("skolebuss.tenant")
					counted[v.AsString()+" "+tn.AsString()] += dp.Value
				}
			}
		}
	}
	if counted["roster-a "+tenantA] != 1 || counted["contact-ab "+tenantA] != 1 || len(counted) != 2 {
		t.Errorf("%s: %v, want 1 for each vendor of %s", fanout.MetricMismatches, counted, tenantA)
	}
	// The next export is delivered as usual on top of the resync.
	w.docs[tenantA] = append(w.docs[tenantA], w.docs[tenantA][1])
	w.publishSettled(t, tenantA, 3)
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 4)
		w.checkTruth(t, v, tenantA, 3, got[3], false)
	}
	if n := w.mismatches(); n != 2 {
		t.Errorf("%d mismatches after a whole export, want 2", n)
	}
}

// State stored before the fan-out kept the canonical checksum has none: the
// next export is not compared (its loss goes unseen) and its
// export.completed's checksum is taken as it is; the export after it is
// compared, and a loss there heals the vendors.
func TestCanonicalChecksumUnknownUntilTheNextExport(t *testing.T) {
	w := newBareWorld(t, "tiny")
	w.publishSettled(t, tenantA, 0)
	stop := w.run(t, fanout.Config{})
	for _, v := range []string{"roster-a", "contact-ab"} {
		w.waitDeliveries(t, v, tenantA, 1)
	}
	w.waitState(t, tenantA, "roster-a", "contact-ab")
	stop()
	ctx := context.Background()
	for _, v := range []string{"roster-a", "contact-ab"} {
		name := v + "." + tenantA
		b, err := w.store.GetBytes(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]json.RawMessage
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if _, ok := st["canonical"]; !ok {
			t.Fatalf("%s: no canonical checksum in %s", name, b)
		}
		delete(st, "canonical") // as stored before it was kept
		if b, err = json.Marshal(st); err != nil {
			t.Fatal(err)
		}
		if _, err := w.store.PutBytes(ctx, name, b); err != nil {
			t.Fatal(err)
		}
	}
	w.publishSettled(t, tenantA, 1)
	w.deleteChange(t, tenantA, exportID(tenantA, 1), ".membership.created")
	stop = w.run(t, fanout.Config{})
	for _, v := range []string{"roster-a", "contact-ab"} {
		if got := w.waitDeliveries(t, v, tenantA, 2); got[1].resync {
			t.Errorf("%s: a resync of the export after state without the canonical checksum", v)
		}
	}
	if n := w.mismatches(); n != 0 {
		t.Errorf("%d mismatches with the canonical checksum unknown", n)
	}
	stop()
	w.runWithALostChange(t, 2)
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 3)
		w.checkTruth(t, v, tenantA, 2, got[2], true)
	}
	if n := w.mismatches(); n != 2 {
		t.Errorf("%d mismatches, want 2", n)
	}
}

// waitState waits until the fan-out has stored each vendor's state of
// tenant: it does so after the vendor's stream acknowledged the export, so a
// delivery seen on the stream does not mean the state is there yet.
func (w *world) waitState(t *testing.T, tenant string, vendors ...string) {
	t.Helper()
	waitfor.Condition(t, 10*time.Second, func() error {
		for _, v := range vendors {
			if _, err := w.store.GetInfo(context.Background(), v+"."+tenant); err != nil {
				return fmt.Errorf("state of %s: %w", v, err)
			}
		}
		return nil
	})
}

// runWithALostChange publishes tenantA's generation gen, settled, deletes one
// of its change events from the LMS stream (as an OS crash can lose it), and
// starts the fan-out on it.
func (w *world) runWithALostChange(t *testing.T, gen int) {
	t.Helper()
	w.publishSettled(t, tenantA, gen)
	w.deleteChange(t, tenantA, exportID(tenantA, gen), ".membership.created")
	w.run(t, fanout.Config{})
}
