package vendorcopy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const tenant = "1a2b3c4d-0000-4000-8000-00000000e001"

var at = time.Date(2026, 8, 17, 6, 0, 0, 0, time.UTC)

func runVendor(t *testing.T, b *bus.Bus, cfg Config) *Vendor {
	t.Helper()
	v, err := New(b.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return v
}

// publish stores v on the LMS stream; msgID, if set, replaces its
// Nats-Msg-Id so the stream stores a redelivered copy.
func publish(t *testing.T, b *bus.Bus, v messages.Codable, msgID string) {
	t.Helper()
	m, err := messages.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	if _, err := b.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func event(id string, e pifu.Entity, op messages.Op, key, obj, prev string) messages.Event {
	ev := messages.Event{ID: id, Tenant: tenant, ExportID: "x1", Entity: e, Op: op, Key: key, Time: at, Object: json.RawMessage(obj)}
	if prev != "" {
		ev.Previous = json.RawMessage(prev)
	}
	return ev
}

func boundary(exportID string, p messages.Phase, persons int, checksum string) messages.Boundary {
	return messages.Boundary{ID: messages.BoundaryID(tenant, exportID, p), Tenant: tenant, ExportID: exportID, Phase: p, Time: at,
		Counts: map[pifu.Entity]messages.Counts{pifu.EntityPerson: {Created: 2, Total: persons}}, Checksum: checksum}
}

func stateChecksum(objs map[string]string) string {
	var c snapshot.Checksum
	for k, o := range objs {
		c.Add(snapshot.KeyHash(pifu.EntityPerson, k), xxhashSum([]byte(o)))
	}
	return messages.FormatChecksum(c)
}

func TestAppliesInOrderIdempotentlyAndVerifies(t *testing.T) {
	b := bustest.Open(t)
	var mu sync.Mutex
	var progress []Status
	v := runVendor(t, b, Config{ProgressEvery: 1, OnProgress: func(s Status) {
		mu.Lock()
		progress = append(progress, s)
		mu.Unlock()
	}})

	publish(t, b, boundary("x1", messages.PhaseStarted, 1, ""), "")
	publish(t, b, event("e1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":1}`, ""), "")
	publish(t, b, event("e1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":1}`, ""), "again") // a redelivery
	publish(t, b, event("e2", pifu.EntityPerson, messages.OpCreated, "p2", `{"a":2}`, ""), "")
	publish(t, b, event("e3", pifu.EntityPerson, messages.OpUpdated, "p1", `{"a":3}`, `{"a":1}`), "")
	publish(t, b, event("e4", pifu.EntityPerson, messages.OpDeleted, "p2", `{"a":2}`, ""), "")
	publish(t, b, boundary("x1", messages.PhaseCompleted, 1, stateChecksum(map[string]string{"p1": `{"a":3}`})), "")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := v.WaitFor(ctx, tenant, "x1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Matched || st.Applied != 4 || st.Duplicates != 1 || st.Counts[pifu.EntityPerson] != 1 || st.Exports != 1 {
		t.Fatalf("status %+v", st)
	}
	if c := v.Copy(tenant); len(c[pifu.EntityPerson]) != 1 || string(c[pifu.EntityPerson]["p1"]) != `{"a":3}` {
		t.Fatalf("copy %v", c)
	}
	mu.Lock()
	n := len(progress)
	mu.Unlock()
	if n < 5 {
		t.Errorf("%d progress calls, want one per change and boundary", n)
	}

	// A copy that misses an event is found out by export.completed.
	publish(t, b, boundary("x2", messages.PhaseStarted, 2, ""), "")
	publish(t, b, event("e5", pifu.EntityPerson, messages.OpCreated, "p3", `{"a":5}`, ""), "")
	// (the creation of p4 is lost)
	publish(t, b, boundary("x2", messages.PhaseCompleted, 3,
		stateChecksum(map[string]string{"p1": `{"a":3}`, "p3": `{"a":5}`, "p4": `{"a":6}`})), "")
	st, err = v.WaitFor(ctx, tenant, "x2")
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched || !strings.Contains(st.Mismatch, "2 person records, export.completed says 3") || !strings.Contains(st.Mismatch, "checksum") {
		t.Fatalf("a gap was not found: %+v", st)
	}
	if _, ok := v.Status("other"); ok {
		t.Error("status of a tenant never seen")
	}
	if got := v.Tenants(); len(got) != 1 || got[0] != tenant {
		t.Errorf("tenants %v", got)
	}
}

func TestRestartedVendorRebuildsItsCopy(t *testing.T) {
	b := bustest.Open(t)
	publish(t, b, boundary("x1", messages.PhaseStarted, 1, ""), "")
	publish(t, b, event("e1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":1}`, ""), "")
	publish(t, b, boundary("x1", messages.PhaseCompleted, 1, stateChecksum(map[string]string{"p1": `{"a":1}`})), "")
	for range 2 { // a restarted vendor rebuilds its copy from the stream
		v, err := New(b.JS, Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		go func() { done <- v.Run(ctx) }()
		st, err := v.WaitFor(ctx, tenant, "x1")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err != nil || !st.Matched || st.Applied != 1 {
			t.Fatalf("status %+v, %v", st, err)
		}
	}
}

// The vendor's checksum is the publisher's: computed from the objects as the
// events carry them, it equals the snapshot's checksum of the export.
func TestChecksumIsTheSnapshotChecksum(t *testing.T) {
	sizes, _ := rostergen.Preset("small")
	muni, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Fjordvik kommune", Seed: 1, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := muni.WriteExport(context.Background(), &doc, 0); err != nil {
		t.Fatal(err)
	}
	snap, _, err := snapshot.FromRecords(tenant, "x", pifu.NewDecoder(bytes.NewReader(doc.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	c := map[pifu.Entity]map[string]json.RawMessage{}
	d := pifu.NewDecoder(bytes.NewReader(doc.Bytes()))
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if c[rec.Entity()] == nil {
			c[rec.Entity()] = map[string]json.RawMessage{}
		}
		if _, dup := c[rec.Entity()][rec.Key()]; !dup {
			c[rec.Entity()][rec.Key()], _ = json.Marshal(rec.Object())
		}
	}
	if got, want := Checksum(c), snap.Checksum(); got != want {
		t.Fatalf("vendor checksum %s, snapshot %s", got, want)
	}
}

func TestIDSetForgetsTheOldest(t *testing.T) {
	s := newIDSet(2)
	for _, id := range []string{"a", "b", "c"} {
		if !s.add(id) {
			t.Fatalf("%s not new", id)
		}
	}
	if s.add("c") || s.add("b") {
		t.Error("recent ids forgotten")
	}
	if !s.add("a") {
		t.Error("the oldest id is still remembered beyond the bound")
	}
	if len(s.set) != 2 {
		t.Errorf("%d ids remembered, bound 2", len(s.set))
	}
	hexID := strings.Repeat("0f", 16)
	if !s.add(hexID) || s.add(hexID) {
		t.Error("hex ids")
	}
}

// With Config.Vendor the copy reads that vendor's stream, whose subjects
// carry the vendor, and checks its export.completed as the canonical one.
func TestReadsAVendorsStream(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	if _, err := bus.ProvisionVendors(ctx, b.JS, bus.ProvisionConfig{}, []string{"vendor-a", "vendor-b"}); err != nil {
		t.Fatal(err)
	}
	// to publishes v on vendor's stream, as the fan-out does.
	to := func(vendor string, v messages.Codable) {
		t.Helper()
		m, err := messages.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		switch x := v.(type) {
		case messages.Event:
			m.Subject, err = messages.VendorEventSubject(vendor, x.Tenant, x.Entity, x.Op)
		case messages.Boundary:
			m.Subject, err = messages.VendorBoundarySubject(vendor, x.Tenant, x.Phase)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	a := runVendor(t, b, Config{Vendor: "vendor-a"})
	canonical := runVendor(t, b, Config{})

	to("vendor-a", boundary("x1", messages.PhaseStarted, 1, ""))
	to("vendor-a", event("a1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":1}`, ""))
	to("vendor-a", boundary("x1", messages.PhaseCompleted, 1, stateChecksum(map[string]string{"p1": `{"a":1}`})))
	// Vendor b's stream and the LMS stream are not vendor a's.
	to("vendor-b", event("b1", pifu.EntityPerson, messages.OpCreated, "p2", `{"b":1}`, ""))
	publish(t, b, event("c1", pifu.EntityPerson, messages.OpCreated, "p3", `{"c":1}`, ""), "")

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := a.WaitFor(wctx, tenant, "x1")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Matched || st.Applied != 1 || st.Counts[pifu.EntityPerson] != 1 {
		t.Fatalf("vendor a's copy: %+v", st)
	}
	if c := a.Copy(tenant); len(c[pifu.EntityPerson]) != 1 || string(c[pifu.EntityPerson]["p1"]) != `{"a":1}` {
		t.Fatalf("vendor a's copy %v", c)
	}
	// The canonical copy read the LMS stream only.
	waitfor.Condition(t, 10*time.Second, func() error {
		if st, _ := canonical.Status(tenant); st.Applied != 1 {
			return fmt.Errorf("the canonical copy applied %d events, want the LMS stream's one", st.Applied)
		}
		return nil
	})
	if c := canonical.Copy(tenant); len(c[pifu.EntityPerson]) != 1 || c[pifu.EntityPerson]["p3"] == nil {
		t.Fatalf("canonical copy %v", c)
	}

	// A copy of vendor a pointed at vendor b's stream applies none of it.
	var logs bytes.Buffer
	var mu sync.Mutex
	wrong := runVendor(t, b, Config{Vendor: "vendor-a", Stream: bus.VendorStream("vendor-b"), FilterSubject: "vendor.vendor-b.>",
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))})
	waitfor.Condition(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(logs.String(), "an event of vendor vendor-b in the stream of vendor vendor-a") {
			return fmt.Errorf("vendor b's event was not refused:\n%s", logs.String())
		}
		return nil
	})
	if got := wrong.Tenants(); len(got) != 0 {
		t.Errorf("the wrong stream's events were applied: %v", got)
	}

	// A tenant.unlinked whose body is another vendor's is refused (the
	// change after it is applied to the copy it would have dropped);
	// vendor a's own drops its copy of the tenant.
	other, err := messages.Encode(messages.TenantUnlinked{ID: messages.UnlinkedID("vendor-b", tenant, "x1"), Vendor: "vendor-b", Tenant: tenant, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	other.Subject, _ = messages.VendorUnlinkedSubject("vendor-a", tenant) // vendor b's body on vendor a's subject
	if _, err := b.JS.PublishMsg(ctx, other); err != nil {
		t.Fatal(err)
	}
	to("vendor-a", event("a2", pifu.EntityPerson, messages.OpCreated, "p4", `{"a":2}`, ""))
	waitfor.Condition(t, 10*time.Second, func() error {
		if st, _ := a.Status(tenant); st.Applied != 2 {
			return fmt.Errorf("vendor a's copy applied %d events, want 2 (the first kept)", st.Applied)
		}
		return nil
	})
	to("vendor-a", messages.TenantUnlinked{ID: messages.UnlinkedID("vendor-a", tenant, "x1"), Vendor: "vendor-a", Tenant: tenant, Time: at})
	waitfor.Condition(t, 10*time.Second, func() error {
		if got := a.Tenants(); len(got) != 0 {
			return fmt.Errorf("vendor a still holds %v", got)
		}
		return nil
	})
	if _, ok := a.Status(tenant); ok {
		t.Error("vendor a knows the unlinked tenant")
	}
	if c := a.Copy(tenant); len(c[pifu.EntityPerson]) != 0 {
		t.Errorf("vendor a's copy of the unlinked tenant: %v", c)
	}

	if _, err := New(b.JS, Config{Vendor: "Vendor.A"}); err == nil {
		t.Error("an invalid vendor name was accepted")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
