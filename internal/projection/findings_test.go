package projection_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

func incomplete(t *testing.T, obj []byte) []string {
	t.Helper()
	var m struct {
		Incomplete []string `json:"incomplete"`
	}
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	return m.Incomplete
}

// findingsDocs are a generated document with memberships that are not
// whole added, the same without a member of staff, and the first again.
func findingsDocs(t *testing.T) [][]byte {
	t.Helper()
	doc := generated(t, "tiny", 0)[0]
	src := regexp.MustCompile(`<datasource>([^<]+)</datasource>`).FindSubmatch(doc)[1]
	ms := func(group, member, idtype string) string {
		return "<membership><sourcedid><source>" + string(src) + "</source><id>" + group + "</id></sourcedid><member><sourcedid><source>" +
			string(src) + "</source><id>" + member + "</id></sourcedid><idtype>" + idtype +
			`</idtype><role roletype="01"><status>1</status></role></member></membership>` + "\n"
	}
	end := bytes.LastIndex(doc, []byte("</enterprise>"))
	a := slices.Concat(doc[:end], []byte(ms("GONE-GROUP", "elev-1", "1")+ms("SKOLE-1", "elev-gone", "1")+
		ms("SKOLE-1", "TRINN-1-1", "2")+ms("GONE-GROUP", "foresatt-1", "1")), doc[end:])
	// A member of staff leaves (a pupil leaving alone would leave its
	// guardians unlinked, which a profile without guardians then counts in
	// its state though no change of the export sends them).
	loc := regexp.MustCompile(`<person>(?:[^<]|<[^/]|</[^p]|</p[^e])*?<id>ansatt-1</id></sourcedid>.*?</person>\n?`).FindIndex(a)
	if loc == nil {
		t.Fatal("no ansatt-1 in the document")
	}
	b := slices.Concat(a[:loc[0]], a[loc[1]:])
	return [][]byte{a, b, a}
}

// Every profile keeps a membership's mark: it is roster data. A vendor that
// applies its projected changes holds the marks the canonical events carry,
// and the checksum of what it holds is Projector.Snapshot's, which marks the
// document's memberships as the publisher does.
func TestEveryProfileKeepsTheMarks(t *testing.T) {
	docs := findingsDocs(t)
	idx := make([]*projection.Index, len(docs))
	for i, d := range docs {
		idx[i] = index(t, d)
	}
	parts := []string{"contact", "demographics", "guardians", "national_id"}
	for set := range 1 << len(parts) {
		var names []string
		for i, p := range parts {
			if set&(1<<i) != 0 {
				names = append(names, p)
			}
		}
		prof := profile(t, names...)
		held := map[uint64][]byte{}
		marked := 0
		for g, doc := range docs {
			var prev []byte
			before := idx[g]
			if g > 0 {
				prev, before = docs[g-1], idx[g-1]
			}
			p := projector(t, prof, before, idx[g])
			res := changes(t, prev, doc, func(c diff.Change) {
				ch, err := p.Event(c.Entity, messages.Op(c.Op), c.Object, c.Previous)
				if err != nil {
					t.Fatal(err)
				}
				if !ch.Sent() {
					if c.Entity == pifu.EntityMembership && incomplete(t, c.Object) != nil && !prof.Has(projection.Guardians) {
						// Only a guardian's membership may be cut.
						if rec, _ := c.Record(); !idx[g].GuardianPerson(rec.Membership.Member) && !idx[max(g-1, 0)].GuardianPerson(rec.Membership.Member) {
							t.Errorf("%s: marked membership %s not sent", prof, c.Key)
						}
					}
					return
				}
				k := snapshot.KeyHash(c.Entity, c.Key)
				if ch.Op == messages.OpDeleted {
					delete(held, k)
					return
				}
				held[k] = bytes.Clone(ch.Object)
				if c.Entity == pifu.EntityMembership {
					want := incomplete(t, c.Object)
					if got := incomplete(t, ch.Object); !slices.Equal(got, want) {
						t.Errorf("%s: %s membership %s: incomplete %q, canonical %q", prof, ch.Op, c.Key, got, want)
					}
					if want != nil {
						marked++
					}
				}
			})
			if res.Findings.DanglingMemberships < 3 || res.Findings.GroupMembers != 1 {
				t.Fatalf("generation %d: findings %+v", g, res.Findings)
			}
			want, _, err := p.Snapshot(tenant, "x", pifu.NewDecoder(bytes.NewReader(doc)))
			if err != nil {
				t.Fatal(err)
			}
			var sum snapshot.Checksum
			for k, o := range held {
				sum.Add(k, xxhash.Sum64(o))
			}
			if sum != want.Checksum() || len(held) != want.Len() {
				t.Fatalf("%s, export %d: the vendor holds %d records, checksum %s; Projector.Snapshot %d, %s",
					prof, g, len(held), sum, want.Len(), want.Checksum())
			}
		}
		if marked < 4 {
			t.Errorf("%s: %d marked memberships sent", prof, marked)
		}
	}
}
