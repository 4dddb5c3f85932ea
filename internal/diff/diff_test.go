package diff_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

const tenant = "1a2b3c4d-0000-4000-8000-00000000d001"

// outcome is one Run and what it emitted.
type outcome struct {
	res     diff.Result
	changes []diff.Change
	err     error
	opens   int // calls of OpenPrev
	closes  int
	spool   string
}

func runDiff(t testing.TB, cfg diff.Config, prev *snapshot.Snapshot, prevRecs, next []pifu.Record, exportID string) outcome {
	t.Helper()
	var o outcome
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = t.TempDir()
	}
	o.spool = cfg.SpoolDir
	in := diff.Input{Tenant: tenant, ExportID: exportID, Prev: prev, Next: reader(next),
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			o.opens++
			return reader(prevRecs), closer{&o.closes}, nil
		}}
	o.res, o.err = diff.Run(context.Background(), cfg, in, func(_ context.Context, c diff.Change) error {
		o.changes = append(o.changes, c)
		return nil
	})
	if o.opens != o.closes {
		t.Errorf("OpenPrev called %d times, closed %d times", o.opens, o.closes)
	}
	assertSpoolEmpty(t, cfg.SpoolDir)
	return o
}

func assertSpoolEmpty(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		t.Errorf("spool dir %s still holds %s", dir, ents[0].Name())
	}
}

func mustSnapshot(t testing.TB, recs []pifu.Record, exportID string) *snapshot.Snapshot {
	t.Helper()
	s, _, err := snapshot.FromRecords(tenant, exportID, reader(recs))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func canon(t testing.TB, r pifu.Record) string {
	t.Helper()
	b, err := json.Marshal(r.Object())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// marked is recs as the diff sees them: memberships marked, the ones it
// marks at the end of the document last (snapshot.Marked).
func marked(t testing.TB, recs []pifu.Record) []pifu.Record {
	t.Helper()
	var out []pifu.Record
	rd := snapshot.Marked(reader(recs))
	for {
		r, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

type wantChange struct {
	entity pifu.Entity
	op     diff.Op
	key    string
	object string
}

// oracle is the naive in-memory diff: what Run must emit, in order.
func oracle(t testing.TB, prev, next []pifu.Record) []wantChange {
	type kv struct {
		e   pifu.Entity
		key string
	}
	prevObj := map[kv]string{}
	for _, r := range marked(t, prev) {
		if _, ok := prevObj[kv{r.Entity(), r.Key()}]; !ok {
			prevObj[kv{r.Entity(), r.Key()}] = canon(t, r)
		}
	}
	var ups, dels [4][]wantChange
	seen := map[kv]bool{}
	for _, r := range marked(t, next) {
		k := kv{r.Entity(), r.Key()}
		if seen[k] {
			continue
		}
		seen[k] = true
		i, _ := snapshot.EntityIndex(k.e)
		obj := canon(t, r)
		old, ok := prevObj[k]
		switch {
		case !ok:
			ups[i] = append(ups[i], wantChange{k.e, diff.Created, k.key, obj})
		case old != obj:
			ups[i] = append(ups[i], wantChange{k.e, diff.Updated, k.key, obj})
		}
	}
	done := map[kv]bool{}
	for j := len(prev) - 1; j >= 0; j-- {
		r := prev[j]
		k := kv{r.Entity(), r.Key()}
		if seen[k] || done[k] {
			continue
		}
		done[k] = true
		i, _ := snapshot.EntityIndex(k.e)
		dels[i] = append(dels[i], wantChange{k.e, diff.Deleted, k.key, prevObj[k]})
	}
	var out []wantChange
	for i := range ups {
		out = append(out, ups[i]...)
	}
	for i := len(dels) - 1; i >= 0; i-- {
		out = append(out, dels[i]...)
	}
	return out
}

func assertChanges(t *testing.T, got []diff.Change, want []wantChange) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d changes, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.Entity != w.entity || g.Op != w.op || g.Key != w.key || string(g.Object) != w.object {
			t.Fatalf("change %d: %s %s %s %s\nwant %s %s %s %s", i, g.Entity, g.Op, g.Key, g.Object,
				w.entity, w.op, w.key, w.object)
		}
		if g.Seq != i+1 {
			t.Fatalf("change %d has Seq %d", i, g.Seq)
		}
	}
}

func TestFirstExport(t *testing.T) {
	m := newMuni(1, 3, 4, 10)
	recs := m.records()
	o := runDiff(t, diff.Config{}, nil, nil, recs, "e1")
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.opens != 0 {
		t.Errorf("a first export opened the previous export %d times", o.opens)
	}
	assertChanges(t, o.changes, oracle(t, nil, recs))
	// Exactly one creation per record, entities in order.
	last := -1
	for _, c := range o.changes {
		i, _ := snapshot.EntityIndex(c.Entity)
		if c.Op != diff.Created || i < last {
			t.Fatalf("change %d: %s %s after entity %d", c.Seq, c.Entity, c.Op, last)
		}
		last = i
	}
	if len(o.changes) != len(recs) || o.res.Emitted != len(recs) {
		t.Fatalf("%d changes (%d emitted) for %d records", len(o.changes), o.res.Emitted, len(recs))
	}
	want := mustSnapshot(t, recs, "e1")
	if o.res.Snapshot.Checksum() != want.Checksum() || o.res.Snapshot.Len() != len(recs) || o.res.Snapshot.ExportID() != "e1" {
		t.Fatalf("snapshot %s/%d/%s, want %s/%d/e1", o.res.Snapshot.Checksum(), o.res.Snapshot.Len(),
			o.res.Snapshot.ExportID(), want.Checksum(), len(recs))
	}
	tot := o.res.Total()
	if tot.Created != len(recs) || tot.Updated+tot.Deleted+tot.Unchanged+tot.Duplicates != 0 {
		t.Fatalf("counts %+v", tot)
	}
	if got := o.res.Counts[pifu.EntityOrg].Created; got != 4 {
		t.Fatalf("%d orgs created, want 4", got)
	}
	// A change's object round-trips to the record and hashes to its content hash.
	for _, c := range o.changes[:5] {
		rec, err := c.Record()
		if err != nil {
			t.Fatal(err)
		}
		if ch, _ := snapshot.ContentHash(rec); ch != c.ContentHash || rec.Key() != c.Key || rec.Entity() != c.Entity {
			t.Fatalf("change %s: record %s %s hash %x, want %s %s %x", c.ID, rec.Entity(), rec.Key(), ch, c.Entity, c.Key, c.ContentHash)
		}
	}
}

// nextGeneration changes gen0 in known ways and says what it did.
func nextGeneration(m *muni) *muni {
	n := m.clone()
	// Updates: a name (Formatted and Given), an e-mail dropped, an e-mail
	// added, a school renamed, a membership's status.
	n.persons[1].Name.Given, n.persons[1].Name.Formatted = "Endret", "Endret Nordmann"
	n.persons[2].Email = ""
	n.persons[3].Email = "ny@skole.example"
	n.groups[1].Short = "Nytt navn"
	n.members[0].Status = "0"
	// Deletions: two pupils of class s0c1 and their memberships, and class
	// s1c3 with its memberships.
	gone := map[string]bool{"s0c1p0": true, "s0c1p1": true}
	n.persons = slices.DeleteFunc(n.persons, func(p *pifu.Person) bool { return gone[p.SourcedID.ID] })
	n.members = slices.DeleteFunc(n.members, func(ms *pifu.Membership) bool {
		return gone[ms.Member.ID] || ms.Group.ID == "s1c3"
	})
	n.groups = slices.DeleteFunc(n.groups, func(g *pifu.Group) bool { return g.SourcedID.ID == "s1c3" })
	// Creations: a new school with a class, two pupils in it.
	n.groups = append(n.groups[:4:4], append([]*pifu.Group{{SourcedID: sid("s9"), Short: "Ny skole",
		Types: []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "skole"}}}}, n.groups[4:]...)...)
	n.groups = append(n.groups, &pifu.Group{SourcedID: sid("s9c0"), Short: "1A",
		Types:         []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe"}},
		Relationships: []pifu.Relationship{{Relation: "1", Target: sid("s9")}}})
	for _, id := range []string{"s9p0", "s9p1"} {
		n.persons = append(n.persons, &pifu.Person{SourcedID: sid(id), Name: pifu.Name{Formatted: "Ny Elev", Family: "Elev", Given: "Ny"}})
		n.members = append(n.members, &pifu.Membership{Group: sid("s9c0"), Member: sid(id), RoleType: "01", Status: "1"})
	}
	return n
}

func TestChangedGeneration(t *testing.T) {
	m0 := newMuni(2, 3, 4, 10)
	r0 := m0.records()
	s0 := mustSnapshot(t, r0, "e0")
	m1 := nextGeneration(m0)
	r1 := m1.records()
	o := runDiff(t, diff.Config{}, s0, r0, r1, "e1")
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.opens != 1 {
		t.Fatalf("previous export opened %d times, want 1", o.opens)
	}
	assertChanges(t, o.changes, oracle(t, r0, r1))

	wantCounts := map[pifu.Entity]diff.Counts{
		pifu.EntityOrg:        {Created: 1, Updated: 1, Unchanged: 3},
		pifu.EntityGroup:      {Created: 1, Deleted: 1, Unchanged: 11},
		pifu.EntityPerson:     {Created: 2, Updated: 3, Deleted: 2, Unchanged: len(m0.persons) - 5},
		pifu.EntityMembership: {Created: 2, Updated: 1, Deleted: 2 + 11, Unchanged: len(m0.members) - 14},
	}
	for e, w := range wantCounts {
		if g := o.res.Counts[e]; g != w {
			t.Errorf("%s counts %+v, want %+v", e, g, w)
		}
	}
	// Previous values: only the changed fields.
	prevOf := map[string]string{}
	for _, c := range o.changes {
		if c.Op == diff.Updated {
			prevOf[c.Key] = string(c.Previous)
		} else if c.Previous != nil {
			t.Errorf("%s %s carries previous %s", c.Op, c.Key, c.Previous)
		}
	}
	p1, p2, p3 := m0.persons[1], m0.persons[2], m0.persons[3]
	wantPrev := map[string]string{
		p1.SourcedID.Key(): fmt.Sprintf(`{"name":{"fn":%q,"family":"Nordmann","given":%q}}`, p1.Name.Formatted, p1.Name.Given),
		p2.SourcedID.Key(): fmt.Sprintf(`{"email":%q}`, p2.Email),
		p3.SourcedID.Key(): `{"email":null}`,
		"flyt/s0":          `{"short":"Skole 0"}`,
	}
	if p2.Email == "" || p3.Email != "" {
		t.Fatalf("generator changed: persons 2 and 3 must have and lack an e-mail (%q, %q)", p2.Email, p3.Email)
	}
	for k, w := range wantPrev {
		if prevOf[k] != w {
			t.Errorf("previous of %s: %s, want %s", k, prevOf[k], w)
		}
	}
	if len(prevOf) != 5 {
		t.Errorf("%d updates, want 5", len(prevOf))
	}
	// The new snapshot is the state of generation 1.
	if want := mustSnapshot(t, r1, "e1"); o.res.Snapshot.Checksum() != want.Checksum() {
		t.Fatalf("snapshot checksum %s, want %s", o.res.Snapshot.Checksum(), want.Checksum())
	}
	// A vendor applying the changes to its copy of generation 0 ends with generation 1.
	copyOf := func(recs []pifu.Record) map[string]string {
		c := map[string]string{}
		for _, r := range recs {
			c[string(r.Entity())+" "+r.Key()] = canon(t, r)
		}
		return c
	}
	vendor := copyOf(r0)
	for _, c := range o.changes {
		k := string(c.Entity) + " " + c.Key
		switch c.Op {
		case diff.Created, diff.Updated:
			vendor[k] = string(c.Object)
		case diff.Deleted:
			if vendor[k] != string(c.Object) {
				t.Fatalf("deletion of %s carries %s, the vendor has %s", k, c.Object, vendor[k])
			}
			delete(vendor, k)
		}
	}
	truth := copyOf(r1)
	if len(vendor) != len(truth) {
		t.Fatalf("vendor copy has %d records, truth %d", len(vendor), len(truth))
	}
	for k, v := range truth {
		if vendor[k] != v {
			t.Fatalf("vendor copy of %s: %s, want %s", k, vendor[k], v)
		}
	}
	// Deletions are last, memberships first, orgs never before groups.
	firstDel := slices.IndexFunc(o.changes, func(c diff.Change) bool { return c.Op == diff.Deleted })
	for _, c := range o.changes[firstDel:] {
		if c.Op != diff.Deleted {
			t.Fatalf("%s %s %s after the first deletion", c.Entity, c.Op, c.Key)
		}
	}
	if o.changes[firstDel].Entity != pifu.EntityMembership || o.changes[len(o.changes)-1].Entity != pifu.EntityGroup {
		t.Fatalf("deletions run from %s to %s", o.changes[firstDel].Entity, o.changes[len(o.changes)-1].Entity)
	}
}

func TestUnchangedExport(t *testing.T) {
	m := newMuni(3, 2, 3, 8)
	recs := m.records()
	s0 := mustSnapshot(t, recs, "e0")
	planned := 0
	spool := t.TempDir()
	in := diff.Input{Tenant: tenant, ExportID: "e1", Prev: s0, Next: reader(recs),
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			t.Fatal("an unchanged export opened the previous export")
			return nil, nil, nil
		},
		OnPlan: func(_ context.Context, p diff.Plan) error {
			planned++
			if p.Total().Unchanged != len(recs) || p.Total().Changes() != 0 {
				t.Errorf("plan %+v", p.Total())
			}
			return nil
		}}
	res, err := diff.Run(context.Background(), diff.Config{SpoolDir: spool}, in, func(context.Context, diff.Change) error {
		t.Fatal("an unchanged export emitted a change")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if planned != 1 || res.Emitted != 0 {
		t.Fatalf("OnPlan called %d times, %d emitted", planned, res.Emitted)
	}
	if res.Snapshot.Checksum() != s0.Checksum() || res.Snapshot.ExportID() != "e1" || res.Snapshot.Len() != len(recs) {
		t.Fatalf("snapshot %s %s %d", res.Snapshot.Checksum(), res.Snapshot.ExportID(), res.Snapshot.Len())
	}
	assertSpoolEmpty(t, spool)
}

func TestEventIDsAreDeterministic(t *testing.T) {
	m0 := newMuni(4, 2, 3, 6)
	r0, r1 := m0.records(), nextGeneration(m0).records()
	s0 := mustSnapshot(t, r0, "e0")
	a := runDiff(t, diff.Config{}, s0, r0, r1, "e1")
	b := runDiff(t, diff.Config{}, s0, r0, r1, "e1") // a redo of the export
	again := runDiff(t, diff.Config{}, s0, r0, r1, "e2")
	if a.err != nil || b.err != nil || again.err != nil {
		t.Fatal(a.err, b.err, again.err)
	}
	ids := map[string]bool{}
	for i := range a.changes {
		if a.changes[i].ID != b.changes[i].ID {
			t.Fatalf("change %d: ids %s and %s", i, a.changes[i].ID, b.changes[i].ID)
		}
		if ids[a.changes[i].ID] || len(a.changes[i].ID) != 32 {
			t.Fatalf("id %q repeated or malformed", a.changes[i].ID)
		}
		ids[a.changes[i].ID] = true
	}
	// The same transition in another export (A to B, back to A, and to B
	// again) is another event: a stream that deduplicates on the id must
	// not drop it.
	for i := range again.changes {
		if again.changes[i].ID == a.changes[i].ID {
			t.Fatalf("change %d: export e2 has export e1's id %s", i, a.changes[i].ID)
		}
	}
	// The same transition against another base state is another event.
	other := mustSnapshot(t, r0[1:], "e0")
	c := a.changes[0]
	if diff.EventID(tenant, "e1", c.Entity, c.Key, c.Op, c.ContentHash, other.Checksum()) == c.ID {
		t.Fatal("the event id ignores the base state")
	}
}

func TestDuplicateKeys(t *testing.T) {
	m := newMuni(5, 1, 2, 4)
	recs := m.records()
	first := recs[2]
	dup := *first.Person
	dup.Name.Given = "Second"
	dupRec := pifu.Record{Person: &dup, Line: 99999}
	withDup := slices.Insert(slices.Clone(recs), 5, dupRec)
	s0 := mustSnapshot(t, recs, "e0")
	for _, prev := range []*snapshot.Snapshot{nil, s0} {
		o := runDiff(t, diff.Config{}, prev, recs, withDup, "e1")
		if o.err != nil {
			t.Fatal(o.err)
		}
		if n := o.res.Counts[pifu.EntityPerson].Duplicates; n != 1 {
			t.Fatalf("%d duplicates counted, want 1", n)
		}
		if len(o.res.Duplicates) != 1 || o.res.Duplicates[0].Key != first.Key() || o.res.Duplicates[0].Line != 99999 {
			t.Fatalf("duplicates reported: %+v", o.res.Duplicates)
		}
		if o.res.Snapshot.Checksum() != s0.Checksum() {
			t.Fatal("the duplicate replaced the first record")
		}
		for _, c := range o.changes {
			if c.Key == first.Key() && strings.Contains(string(c.Object), "Second") {
				t.Fatal("the duplicate was emitted")
			}
		}
	}
}

func heldError(t *testing.T, err error) *diff.HeldError {
	t.Helper()
	var h *diff.HeldError
	if !errors.As(err, &h) {
		t.Fatalf("error %v, want a HeldError", err)
	}
	if !failure.IsPermanent(err) || !failure.HasReason(err, failure.ReasonDeletionHeld) {
		t.Fatalf("held error classified %s/%s", failure.ClassOf(err), failure.ReasonOf(err))
	}
	return h
}

func TestDeletionThreshold(t *testing.T) {
	m := newMuni(6, 2, 5, 10)
	recs := m.records()
	s0 := mustSnapshot(t, recs, "e0")

	o := runDiff(t, diff.Config{}, s0, recs, nil, "empty")
	h := heldError(t, o.err)
	if !h.Empty || h.Previous != len(recs) || len(o.changes) != 0 || o.opens != 0 {
		t.Fatalf("empty export: %+v, %d changes, %d opens", h, len(o.changes), o.opens)
	}
	t.Log(h)
	if !strings.Contains(h.Error(), "empty") || !strings.Contains(h.Error(), fmt.Sprint(len(recs))) {
		t.Errorf("message %q", h)
	}

	// Drop 30% of all records, evenly.
	var cut []pifu.Record
	for i, r := range recs {
		if i%10 >= 3 {
			cut = append(cut, r)
		}
	}
	o = runDiff(t, diff.Config{}, s0, recs, cut, "cut")
	h = heldError(t, o.err)
	t.Log(h)
	if h.Entity != "" || h.Deleted != len(recs)-len(cut) || h.Threshold != 0.2 || len(o.changes) != 0 {
		t.Fatalf("30%% cut: %+v, %d changes", h, len(o.changes))
	}
	for _, w := range []string{fmt.Sprintf("%d of %d", h.Deleted, len(recs)), "30.", "20.0%", "force"} {
		if !strings.Contains(h.Error(), w) {
			t.Errorf("message %q lacks %q", h, w)
		}
	}
	// Forced, it deletes them, and the memberships left without their
	// group or person are updated with the mark saying so.
	o = runDiff(t, diff.Config{Force: true}, s0, recs, cut, "cut")
	tot := o.res.Total()
	if o.err != nil || tot.Deleted != len(recs)-len(cut) || tot.Updated == 0 || len(o.changes) != tot.Deleted+tot.Updated ||
		o.res.Findings.DanglingMemberships != tot.Updated || o.res.Findings.GroupMembers != 0 {
		t.Fatalf("forced: %v, %+v, %+v, %d changes", o.err, tot, o.res.Findings, len(o.changes))
	}
	for _, c := range o.changes {
		if c.Op == diff.Updated && (c.Entity != pifu.EntityMembership || !bytes.Contains(c.Object, []byte(`"incomplete":[`))) {
			t.Errorf("update of %s %s: %s", c.Entity, c.Key, c.Object)
		}
	}
	// A higher threshold lets it through.
	if o = runDiff(t, diff.Config{DeleteThreshold: 0.35}, s0, recs, cut, "cut"); o.err != nil {
		t.Fatal(o.err)
	}

	// One entity: 4 of the 10 classes gone (their memberships moved
	// elsewhere would be odd; drop the classes only) is 40% of the groups,
	// a small share overall.
	var noClasses []pifu.Record
	dropped := 0
	for _, r := range recs {
		if r.Entity() == pifu.EntityGroup && dropped < 4 {
			dropped++
			continue
		}
		noClasses = append(noClasses, r)
	}
	o = runDiff(t, diff.Config{MinEntityRecords: 10}, s0, recs, noClasses, "noclasses")
	h = heldError(t, o.err)
	if h.Entity != pifu.EntityGroup || h.Deleted != 4 || h.Previous != 10 {
		t.Fatalf("per entity: %+v", h)
	}
	if o = runDiff(t, diff.Config{}, s0, recs, noClasses, "noclasses"); o.err != nil {
		t.Fatalf("10 groups are below the default floor of 1000, yet: %v", o.err)
	}
}

var errVendorDown = errors.New("vendor down")

func TestEmitFailureStopsAndCleansUp(t *testing.T) {
	m0 := newMuni(7, 2, 3, 6)
	r0, r1 := m0.records(), nextGeneration(m0).records()
	s0 := mustSnapshot(t, r0, "e0")
	spool := t.TempDir()
	calls := 0
	in := diff.Input{Tenant: tenant, ExportID: "e1", Prev: s0, Next: reader(r1),
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			return reader(r0), io.NopCloser(nil), nil
		}}
	res, err := diff.Run(context.Background(), diff.Config{SpoolDir: spool}, in, func(context.Context, diff.Change) error {
		calls++
		if calls == 5 {
			return failure.New(failure.Transient, "publish_timeout", errVendorDown)
		}
		return nil
	})
	if !errors.Is(err, errVendorDown) || failure.ReasonOf(err) != "publish_timeout" {
		t.Fatalf("error %v, want the emit error with its class", err)
	}
	if res.Snapshot != nil || calls != 5 {
		t.Fatalf("snapshot %v after a failed emit, %d calls", res.Snapshot, calls)
	}
	assertSpoolEmpty(t, spool)

	// Cancelled midway: the same, with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	in.Next = reader(r1)
	calls = 0
	_, err = diff.Run(ctx, diff.Config{SpoolDir: spool}, in, func(context.Context, diff.Change) error {
		if calls++; calls == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 3 || failure.ClassOf(err) != failure.Canceled {
		t.Fatalf("cancelled: %v after %d calls", err, calls)
	}
	assertSpoolEmpty(t, spool)
}

func TestPreviousExportMismatch(t *testing.T) {
	m0 := newMuni(8, 1, 2, 5)
	r0, r1 := m0.records(), nextGeneration(m0).records()
	s0 := mustSnapshot(t, r0, "e0")
	// Reopening the wrong export: the new one instead of the previous.
	o := runDiff(t, diff.Config{}, s0, r1, r1, "e1")
	if !failure.IsPermanent(o.err) || failure.ReasonOf(o.err) != "previous_export_mismatch" || len(o.changes) != 0 {
		t.Fatalf("error %v, %d changes", o.err, len(o.changes))
	}
	// A snapshot of another tenant.
	other, _, _ := snapshot.FromRecords("1a2b3c4d-0000-4000-8000-00000000d002", "e0", reader(r0))
	o = runDiff(t, diff.Config{}, other, r0, r1, "e1")
	if failure.ReasonOf(o.err) != "snapshot_mismatch" {
		t.Fatalf("another tenant's snapshot: %v", o.err)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []diff.Config{
		{SpoolDir: dir, DeleteThreshold: 1.5},
		{SpoolDir: dir, DeleteThreshold: -0.1},
		{SpoolDir: dir, MinEntityRecords: -1},
		{SpoolDir: dir + "/missing"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (diff.Config{SpoolDir: dir}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// An empty export is held as the publisher's help says, a tenant's first
// one too (an upstream that serves nothing for a new tenant is more likely
// broken than the municipality empty); forced, it applies, and once the
// applied state is empty an empty export has nothing to delete and applies.
func TestEmptyFirstExportHeld(t *testing.T) {
	o := runDiff(t, diff.Config{}, nil, nil, nil, "first-empty")
	h := heldError(t, o.err)
	if !h.Empty || h.Previous != 0 || !strings.Contains(h.Error(), "first export") || !strings.Contains(h.Error(), "force") {
		t.Fatalf("empty first export: %+v: %v", h, h)
	}
	o = runDiff(t, diff.Config{Force: true}, nil, nil, nil, "first-empty")
	if o.err != nil {
		t.Fatalf("forced empty first export: %v", o.err)
	}
	empty := mustSnapshot(t, nil, "first-empty")
	if o := runDiff(t, diff.Config{}, empty, nil, nil, "still-empty"); o.err != nil {
		t.Fatalf("empty export after an applied empty state: %v", o.err)
	}
}
