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
