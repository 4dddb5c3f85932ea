package diff_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// incompleteOf is the "incomplete" of a membership change's object.
func incompleteOf(t *testing.T, c diff.Change) []string {
	t.Helper()
	var m struct {
		Incomplete []string `json:"incomplete"`
	}
	if err := json.Unmarshal(c.Object, &m); err != nil {
		t.Fatal(err)
	}
	return m.Incomplete
}

// findingsDoc is a small document with every kind of membership that is not
// whole, some listed before the records they refer to.
func findingsDoc() ([]pifu.Record, map[string][]string) {
	org := &pifu.Group{SourcedID: sid("school"), Short: "Skole", Types: []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "skole"}}}
	g1 := &pifu.Group{SourcedID: sid("g1"), Short: "5A", Types: []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe"}}}
	g2 := &pifu.Group{SourcedID: sid("g2"), Short: "5B", Types: []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe"}}}
	p1 := &pifu.Person{SourcedID: sid("p1"), Name: pifu.Name{Formatted: "Kari Nordmann", Family: "Nordmann", Given: "Kari"}}
	p2 := &pifu.Person{SourcedID: sid("p2"), Name: pifu.Name{Formatted: "Ola Nordmann", Family: "Nordmann", Given: "Ola"}}
	ms := func(g, m, role, idtype string) *pifu.Membership {
		return &pifu.Membership{Group: sid(g), Member: sid(m), IDType: idtype, RoleType: role, Status: "1"}
	}
	early := ms("g2", "p2", "01", "1") // before its group and person: whole
	recs := []pifu.Record{
		{Membership: early},
		{Person: p1}, {Group: org}, {Group: g1},
		{Membership: ms("g1", "p1", "01", "1")},       // whole
		{Membership: ms("school", "p1", "02", "1")},   // whole, in an org
		{Membership: ms("gone", "p1", "01", "1")},     // its group is not in the document
		{Membership: ms("g1", "nobody", "01", "1")},   // its person is not in the document
		{Membership: ms("g1", "g2", "01", "1")},       // its member is a group (by key, declared a person)
		{Membership: ms("g1", "p2", "02", "2")},       // its member is declared a group
		{Membership: ms("gone", "nobody", "02", "1")}, // neither is there
		{Membership: ms("gone", "g1", "02", "1")},     // no group, and a group member
		{Membership: ms("gone", "p1", "01", "1")},     // a duplicate of a deferred one: skipped
		{Person: p2}, {Group: g2},
	}
	want := map[string][]string{
		early.Key():                          nil,
		ms("g1", "p1", "01", "").Key():       nil,
		ms("school", "p1", "02", "").Key():   nil,
		ms("gone", "p1", "01", "").Key():     {"group"},
		ms("g1", "nobody", "01", "").Key():   {"person"},
		ms("g1", "g2", "01", "").Key():       {"group-member"},
		ms("g1", "p2", "02", "").Key():       {"group-member"},
		ms("gone", "nobody", "02", "").Key(): {"group", "person"},
		ms("gone", "g1", "02", "").Key():     {"group", "group-member"},
	}
	return recs, want
}

func TestFindingsMarkMemberships(t *testing.T) {
	recs, want := findingsDoc()
	o := runDiff(t, diff.Config{}, nil, nil, recs, "e1")
	if o.err != nil {
		t.Fatal(o.err)
	}
	if f := o.res.Findings; f.DanglingMemberships != 4 || f.GroupMembers != 3 {
		t.Errorf("findings %+v, want 4 dangling memberships and 3 group members", f)
	}
	if d := o.res.Counts[pifu.EntityMembership].Duplicates; d != 1 {
		t.Errorf("%d duplicate memberships, want 1", d)
	}
	got := map[string][]string{}
	for _, c := range o.changes {
		if c.Entity == pifu.EntityMembership {
			got[c.Key] = incompleteOf(t, c)
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !slices.Equal(g, w) {
			t.Errorf("membership %s: incomplete %q (emitted %v), want %q", k, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d memberships emitted, want %d", len(got), len(want))
	}
	assertChanges(t, o.changes, oracle(t, nil, recs))
	// The snapshot is the one computed straight from the document, and
	// each object hashes to its change's content hash.
	s, _, err := snapshot.FromRecords(tenant, "e1", reader(recs))
	if err != nil {
		t.Fatal(err)
	}
	if o.res.Snapshot.Checksum() != s.Checksum() {
		t.Errorf("snapshot checksum %s, from the records %s", o.res.Snapshot.Checksum(), s.Checksum())
	}
	for _, c := range o.changes {
		rec, err := c.Record()
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := snapshot.ContentHash(rec); h != c.ContentHash {
			t.Errorf("%s %s: content hash %x, of its object %x", c.Entity, c.Key, c.ContentHash, h)
		}
	}
	// The input records are not modified.
	for _, r := range recs {
		if r.Membership != nil && r.Membership.Incomplete != nil {
			t.Fatalf("membership %s of the input marked", r.Key())
		}
	}
}

// A person leaving the document updates the memberships that refer to it
// with the mark, and its return updates them without it.
func TestFindingsFollowThePerson(t *testing.T) {
	m0 := newMuni(3, 1, 2, 4)
	r0 := m0.records()
	s0 := mustSnapshot(t, r0, "e0")
	gone := m0.persons[1].SourcedID // a pupil of the first class
	var r1 []pifu.Record
	for _, r := range r0 {
		if r.Person == nil || r.Person.SourcedID != gone {
			r1 = append(r1, r)
		}
	}
	o := runDiff(t, diff.Config{}, s0, r0, r1, "e1")
	if o.err != nil {
		t.Fatal(o.err)
	}
	assertChanges(t, o.changes, oracle(t, r0, r1))
	var updated int
	for _, c := range o.changes {
		switch {
		case c.Op == diff.Updated:
			updated++
			if c.Entity != pifu.EntityMembership || !slices.Equal(incompleteOf(t, c), []string{"person"}) ||
				string(c.Previous) != `{"incomplete":null}` {
				t.Errorf("update %s %s: %s, previous %s", c.Entity, c.Key, c.Object, c.Previous)
			}
		case c.Op == diff.Deleted && (c.Entity != pifu.EntityPerson || c.Key != gone.Key()):
			t.Errorf("deleted %s %s", c.Entity, c.Key)
		}
	}
	if updated != 1 || o.res.Findings != (diff.Findings{DanglingMemberships: 1}) {
		t.Fatalf("%d memberships updated, findings %+v; want 1 and 1", updated, o.res.Findings)
	}
	s1 := o.res.Snapshot

	// The person returns: the mark goes.
	o = runDiff(t, diff.Config{}, s1, r1, r0, "e2")
	if o.err != nil {
		t.Fatal(o.err)
	}
	assertChanges(t, o.changes, oracle(t, r1, r0))
	for _, c := range o.changes {
		if c.Op == diff.Updated && (incompleteOf(t, c) != nil || string(c.Previous) != `{"incomplete":["person"]}`) {
			t.Errorf("update %s %s: %s, previous %s", c.Entity, c.Key, c.Object, c.Previous)
		}
	}
	if len(o.changes) != 2 || !o.res.Findings.IsZero() || o.res.Snapshot.Checksum() != s0.Checksum() {
		t.Errorf("%d changes, findings %+v, checksum %s (want 2, none, %s)", len(o.changes), o.res.Findings,
			o.res.Snapshot.Checksum(), s0.Checksum())
	}
}

// A snapshot stored before memberships were marked has a dangling one
// unmarked: the next export marks it (an update), and reading the previous
// export for its previous version still matches that snapshot.
func TestFindingsOverAnUnmarkedSnapshot(t *testing.T) {
	recs, _ := findingsDoc()
	old, _, err := snapshot.FromMarkedRecords(tenant, "e0", reader(recs))
	if err != nil {
		t.Fatal(err)
	}
	o := runDiff(t, diff.Config{}, old, recs, recs, "e1")
	if o.err != nil {
		t.Fatal(o.err)
	}
	for _, c := range o.changes {
		if c.Op != diff.Updated || c.Entity != pifu.EntityMembership || incompleteOf(t, c) == nil ||
			string(c.Previous) != `{"incomplete":null}` {
			t.Errorf("%s %s %s: %s, previous %s", c.Op, c.Entity, c.Key, c.Object, c.Previous)
		}
	}
	if len(o.changes) != 6 {
		t.Errorf("%d changes, want the 6 memberships that are not whole", len(o.changes))
	}
}
