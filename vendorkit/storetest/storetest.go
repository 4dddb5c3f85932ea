// Package storetest checks that a vendorkit.Store does what the kit asks of
// it. A vendor runs it in its own tests on its own store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) vendorkit.Store { return openMyStore(t) })
//	}
package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/skolebuss/skolebuss/vendorkit"
)

// Run checks the store open returns, a new empty one for each check:
// changes, positions, summaries and checksums, a resync's export.started and
// a tenant.unlinked, each tenant apart from the others.
func Run(t *testing.T, open func(t *testing.T) vendorkit.Store) {
	t.Run("changes", func(t *testing.T) { changes(t, open(t)) })
	t.Run("resync and unlinked", func(t *testing.T) { discards(t, open(t)) })
}

// batch builds events from seq on.
type batch struct {
	seq    uint64
	events []vendorkit.Event
}

func (b *batch) change(tenant, entity, op, key, object string) *batch {
	b.seq++
	obj := []byte(object)
	b.events = append(b.events, vendorkit.Event{Seq: b.seq, Tenant: tenant, Kind: vendorkit.KindChange,
		Subject: fmt.Sprintf("vendor.v.%s.%s.%s", tenant, entity, op),
		Change: &vendorkit.Change{ExportID: "e", Entity: entity, Op: op, Key: key, Object: obj,
			Mix: vendorkit.RecordMix(entity, key, obj)}})
	return b
}

func (b *batch) event(tenant string, kind vendorkit.Kind, boundary *vendorkit.Boundary) *batch {
	b.seq++
	b.events = append(b.events, vendorkit.Event{Seq: b.seq, Tenant: tenant, Kind: kind, Boundary: boundary})
	return b
}

func (b *batch) apply(t *testing.T, s vendorkit.Store) {
	t.Helper()
	ctx := context.Background()
	if err := s.Apply(ctx, b.events); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	pos, err := s.Position(ctx)
	if err != nil || pos != b.seq {
		t.Fatalf("Position after Apply of events to %d: %d, %v", b.seq, pos, err)
	}
	b.events = nil
}

// expect checks tenant's summary against the records given (entity, key,
// object, ...).
func expect(t *testing.T, s vendorkit.Store, tenant string, recs ...string) {
	t.Helper()
	want := map[string]int{}
	var sum vendorkit.Checksum
	for i := 0; i+2 < len(recs); i += 3 {
		want[recs[i]]++
		sum.Add(vendorkit.RecordMix(recs[i], recs[i+1], []byte(recs[i+2])))
	}
	got, err := s.Summary(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Summary of %s: %v", tenant, err)
	}
	for _, e := range vendorkit.Entities {
		if got.Counts[e] != want[e] {
			t.Errorf("tenant %s: %d %s records, want %d", tenant, got.Counts[e], e, want[e])
		}
	}
	if got.Checksum != sum {
		t.Errorf("tenant %s: checksum %s, want %s", tenant, got.Checksum, sum)
	}
}

func changes(t *testing.T, s vendorkit.Store) {
	ctx := context.Background()
	if pos, err := s.Position(ctx); err != nil || pos != 0 {
		t.Fatalf("a new store's position: %d, %v", pos, err)
	}
	expect(t, s, "a")
	b := &batch{}
	b.event("a", vendorkit.KindExportStarted, &vendorkit.Boundary{ExportID: "e"})
	b.change("a", vendorkit.EntityOrg, vendorkit.OpCreated, "o1", `{"n":1}`)
	b.change("a", vendorkit.EntityPerson, vendorkit.OpCreated, "p1", `{"n":"Åse"}`)
	b.change("a", vendorkit.EntityPerson, vendorkit.OpCreated, "p2", `{"n":2}`)
	b.change("b", vendorkit.EntityPerson, vendorkit.OpCreated, "p1", `{"n":"b"}`)
	b.apply(t, s)
	expect(t, s, "a", "org", "o1", `{"n":1}`, "person", "p1", `{"n":"Åse"}`, "person", "p2", `{"n":2}`)
	expect(t, s, "b", "person", "p1", `{"n":"b"}`)

	// Updates replace, deletions remove (one not held is no error), the
	// same key of another entity or tenant is another record.
	b.change("a", vendorkit.EntityPerson, vendorkit.OpUpdated, "p1", `{"n":"Åse Ø"}`)
	b.change("a", vendorkit.EntityPerson, vendorkit.OpDeleted, "p2", `{"n":2}`)
	b.change("a", vendorkit.EntityGroup, vendorkit.OpCreated, "p1", `{"g":1}`)
	b.change("a", vendorkit.EntityMembership, vendorkit.OpDeleted, "m9", `{"m":9}`)
	b.change("a", vendorkit.EntityMembership, vendorkit.OpCreated, "m1", `{"m":1}`)
	b.event("a", vendorkit.KindExportCompleted, &vendorkit.Boundary{ExportID: "e", Checksum: "xxh64sum:0000000000000000"})
	b.apply(t, s)
	expect(t, s, "a", "org", "o1", `{"n":1}`, "person", "p1", `{"n":"Åse Ø"}`, "group", "p1", `{"g":1}`,
		"membership", "m1", `{"m":1}`)
	expect(t, s, "b", "person", "p1", `{"n":"b"}`)

	// An update of a record not held stores it; an event the kit does not
	// read changes nothing but moves the position.
	b.change("b", vendorkit.EntityPerson, vendorkit.OpUpdated, "p7", `{"n":7}`)
	b.event("b", vendorkit.KindUnknown, nil)
	b.apply(t, s)
	expect(t, s, "b", "person", "p1", `{"n":"b"}`, "person", "p7", `{"n":7}`)
}

func discards(t *testing.T, s vendorkit.Store) {
	b := &batch{}
	for _, tenant := range []string{"a", "b"} {
		b.change(tenant, vendorkit.EntityOrg, vendorkit.OpCreated, "o1", `{"o":1}`)
		b.change(tenant, vendorkit.EntityGroup, vendorkit.OpCreated, "g1", `{"g":1}`)
		b.change(tenant, vendorkit.EntityPerson, vendorkit.OpCreated, "p1", `{"p":1}`)
		b.change(tenant, vendorkit.EntityMembership, vendorkit.OpCreated, "m1", `{"m":1}`)
	}
	b.apply(t, s)
	// A plain export.started keeps what is held; a resync's discards the
	// tenant, and what follows in the same batch is its new state.
	b.event("a", vendorkit.KindExportStarted, &vendorkit.Boundary{ExportID: "e2"})
	b.apply(t, s)
	expect(t, s, "a", "org", "o1", `{"o":1}`, "group", "g1", `{"g":1}`, "person", "p1", `{"p":1}`, "membership", "m1", `{"m":1}`)
	b.event("a", vendorkit.KindExportStarted, &vendorkit.Boundary{ExportID: "e2", Resync: true})
	b.change("a", vendorkit.EntityPerson, vendorkit.OpCreated, "p2", `{"p":2}`)
	b.apply(t, s)
	expect(t, s, "a", "person", "p2", `{"p":2}`)
	expect(t, s, "b", "org", "o1", `{"o":1}`, "group", "g1", `{"g":1}`, "person", "p1", `{"p":1}`, "membership", "m1", `{"m":1}`)
	// tenant.unlinked drops the tenant, and only it.
	b.event("b", vendorkit.KindTenantUnlinked, nil)
	b.apply(t, s)
	expect(t, s, "b")
	expect(t, s, "a", "person", "p2", `{"p":2}`)
}
