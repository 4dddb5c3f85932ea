package projection_test

import (
	"bytes"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// A vendor that applies its projected changes export after export holds
// exactly the projected state of the last export: the checksum it keeps by
// adding and taking away each change's share, and the one it computes from
// the objects it holds, equal Projector.Snapshot's, which the vendor's
// export.completed carries.
func TestVendorStateFollowsTheExports(t *testing.T) {
	preset := "medium"
	if testing.Short() {
		preset = "small"
	}
	docs := generated(t, preset, 0, 1, 2)
	idx := make([]*projection.Index, len(docs))
	for i, d := range docs {
		idx[i] = index(t, d)
	}
	for _, parts := range [][]string{nil, {"contact"}, {"demographics", "national_id"}, {"guardians", "contact"}} {
		prof := profile(t, parts...)
		held := map[uint64][]byte{} // key hash -> the object the vendor holds
		var sum snapshot.Checksum
		var sent, suppressed int
		for g, doc := range docs {
			var prev []byte
			before := idx[g]
			if g > 0 {
				prev, before = docs[g-1], idx[g-1]
			}
			p := projector(t, prof, before, idx[g])
			changes(t, prev, doc, func(c diff.Change) {
				ch, err := p.Event(c.Entity, messages.Op(c.Op), c.Object, c.Previous)
				if err != nil {
					t.Fatal(err)
				}
				if !ch.Sent() {
					if c.Op == diff.Updated {
						suppressed++
					}
					return
				}
				sent++
				k := snapshot.KeyHash(c.Entity, c.Key)
				_, had := held[k]
				switch ch.Op {
				case messages.OpCreated:
					if had {
						t.Fatalf("%s: created %s %s, which the vendor holds", prof, c.Entity, c.Key)
					}
					held[k] = bytes.Clone(ch.Object)
				case messages.OpUpdated:
					if !had || xxhash.Sum64(held[k]) != ch.Old {
						t.Fatalf("%s: updated %s %s: held %v, its hash is not Old", prof, c.Entity, c.Key, had)
					}
					held[k] = bytes.Clone(ch.Object)
				case messages.OpDeleted:
					if !had || xxhash.Sum64(held[k]) != ch.Old {
						t.Fatalf("%s: deleted %s %s: held %v, its hash is not Old", prof, c.Entity, c.Key, had)
					}
					delete(held, k)
				}
				if ch.Op != messages.OpDeleted {
					sum += snapshot.Checksum(snapshot.Mix(k, ch.Content))
				}
				if ch.Op != messages.OpCreated {
					sum -= snapshot.Checksum(snapshot.Mix(k, ch.Old))
				}
			})
			want, _, err := p.Snapshot(tenant, "x", pifu.NewDecoder(bytes.NewReader(doc)))
			if err != nil {
				t.Fatal(err)
			}
			var fromObjects snapshot.Checksum
			for k, o := range held {
				fromObjects.Add(k, xxhash.Sum64(o))
			}
			if sum != want.Checksum() || fromObjects != want.Checksum() || len(held) != want.Len() {
				t.Fatalf("%s, generation %d: kept %s, from objects %s, %d records; want %s, %d records",
					prof, g, sum, fromObjects, len(held), want.Checksum(), want.Len())
			}
		}
		t.Logf("%s: %d changes sent, %d updates not sent, %d records held", prof, sent, suppressed, len(held))
		if !prof.Has(projection.Contact) && suppressed == 0 {
			t.Errorf("%s: no update was suppressed: the generations change no contact data?", prof)
		}
	}
}

// An Index carried from export to export by the canonical changes alone
// answers as the Index built from each export's whole document: a fan-out
// needs no export document to tell guardians from the roster.
func TestIndexCarriedByTheChanges(t *testing.T) {
	preset := "medium"
	if testing.Short() {
		preset = "small"
	}
	docs := generated(t, preset, 0, 1, 2, 3)
	carried := index(t, docs[0])
	for g := 1; g < len(docs); g++ {
		whole := index(t, docs[g]) // built from the whole document
		next := carried.Clone()
		applied, guardianOps, linkOps := 0, 0, 0
		changes(t, docs[g-1], docs[g], func(c diff.Change) {
			dc, err := projection.Decode(c.Entity, messages.Op(c.Op), c.Object, c.Previous)
			if err != nil {
				t.Fatal(err)
			}
			// Guardians come and go, and links change, or this proves little.
			if p := dc.Record.Person; p != nil && c.Op != diff.Updated {
				if carried.GuardianPerson(p.SourcedID) || whole.GuardianPerson(p.SourcedID) {
					guardianOps++
				}
				if len(p.ContactPersons) > 0 {
					linkOps++
				}
			}
			next.Apply(dc)
			applied++
		})
		persons, guardians := 0, 0
		each(t, docs[g], func(r pifu.Record) {
			switch {
			case r.Person != nil:
				persons++
				got, want := next.GuardianPerson(r.Person.SourcedID), whole.GuardianPerson(r.Person.SourcedID)
				if got != want {
					t.Fatalf("generation %d, person %s: carried says guardian %v, built %v", g, r.Key(), got, want)
				}
				if got {
					guardians++
				}
			case r.Group != nil:
				if next.GuardianGroup(r.Group.SourcedID) != whole.GuardianGroup(r.Group.SourcedID) {
					t.Fatalf("generation %d, group %s", g, r.Key())
				}
			}
		})
		if next.GuardianPersons() != whole.GuardianPersons() || guardians == 0 {
			t.Fatalf("generation %d: carried %d guardians, built %d, found %d", g, next.GuardianPersons(), whole.GuardianPersons(), guardians)
		}
		// The clone is the relations before the export: Apply left it alone.
		if g == 1 && carried.GuardianPersons() != index(t, docs[0]).GuardianPersons() {
			t.Fatal("Apply changed the Index it was cloned from")
		}
		t.Logf("generation %d: %d changes applied, %d persons, %d guardians; %d guardians and %d linking persons created or deleted",
			g, applied, persons, guardians, guardianOps, linkOps)
		if guardianOps == 0 || linkOps == 0 {
			t.Errorf("generation %d: no guardian or link came or went", g)
		}
		carried = next
	}
}
