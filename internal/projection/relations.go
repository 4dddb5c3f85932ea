package projection

import (
	"maps"
	"net/url"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// Relations says which persons and groups belong to the guardians part as a
// whole: a projection without that part drops them and their memberships.
// The answer depends on the whole document, not on one record, so it comes
// from an Index of the export the records belong to.
type Relations interface {
	// GuardianPerson reports whether the person with sourcedid id is a
	// guardian only.
	GuardianPerson(id pifu.SourcedID) bool
	// GuardianGroup reports whether the group with sourcedid id is a
	// guardian group.
	GuardianGroup(id pifu.SourcedID) bool
}

// GroupTypeGuardians is the grouptype value of a group of guardians: the
// guardians of the pupils of one basis group.
const GroupTypeGuardians = "foresattegruppe"

// IsGuardianGroup reports whether g is a group of guardians, by its types.
func IsGuardianGroup(g *pifu.Group) bool {
	for _, t := range g.Types {
		if strings.EqualFold(t.Value, GroupTypeGuardians) {
			return true
		}
	}
	return false
}

// Index is the Relations of one export, built from all its records:
//
//   - a guardian group is a group with the grouptype foresattegruppe;
//   - a person is a guardian only when some person links to it
//     (pifu_hasContactPerson, guardian or next of kin) and it is a member
//     of no group other than guardian groups. A teacher who is also a
//     parent stays in the roster; a pupil's link to the teacher is what
//     a profile without guardians loses.
//
// Records may be added in any order. A built Index can also be carried
// from one export to the next by that export's canonical changes (Apply),
// without the export's document: Clone it as the relations before the
// export, Apply every change of the export to the clone for the relations
// after it. The Index keeps counts: of the links to each person, of each
// person's memberships in groups that are not guardian groups, and the set
// of guardian groups (8 to 16 bytes an entry, so a large municipality's
// index is a few MB). It is not safe for concurrent use while it is built
// or changed; otherwise it is read-only.
type Index struct {
	links   map[uint64]int32    // links to each person
	roster  map[uint64]int32    // each person's memberships in groups that are not guardian groups
	ggroups map[uint64]struct{} // guardian groups
	members [][2]uint64         // (member, group) of every membership, until Build
	built   bool
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{links: map[uint64]int32{}, roster: map[uint64]int32{}, ggroups: map[uint64]struct{}{}}
}

// hashID is XXH64 of the sourcedid's key (pifu.SourcedID.Key), without
// building the key.
func hashID(id pifu.SourcedID) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(url.PathEscape(id.Source))
	_, _ = d.WriteString("/")
	_, _ = d.WriteString(url.PathEscape(id.ID))
	return d.Sum64()
}

// Add takes one record of the export into account, before Build.
func (x *Index) Add(rec pifu.Record) {
	switch {
	case rec.Person != nil:
		x.link(rec.Person, 1)
	case rec.Group != nil:
		if IsGuardianGroup(rec.Group) {
			x.ggroups[hashID(rec.Group.SourcedID)] = struct{}{}
		}
	case rec.Membership != nil:
		x.members = append(x.members, [2]uint64{hashID(rec.Membership.Member), hashID(rec.Membership.Group)})
	}
}

func (x *Index) link(p *pifu.Person, d int32) {
	for _, c := range p.ContactPersons {
		count(x.links, hashID(c.Person), d)
	}
}

func count(m map[uint64]int32, k uint64, d int32) {
	if n := m[k] + d; n > 0 {
		m[k] = n
	} else {
		delete(m, k)
	}
}

// Build ends the adding: it counts the memberships now that every guardian
// group is known. The Index answers only after Build.
func (x *Index) Build() *Index {
	for _, m := range x.members {
		if _, guardians := x.ggroups[m[1]]; !guardians {
			x.roster[m[0]]++
		}
	}
	x.members, x.built = nil, true
	return x
}

// Clone is a copy of a built Index that Apply may change.
func (x *Index) Clone() *Index {
	return &Index{links: maps.Clone(x.links), roster: maps.Clone(x.roster), ggroups: maps.Clone(x.ggroups), built: true}
}

// Apply carries a built Index over one canonical change. The changes of an
// export must be applied in their order (creations of groups before those
// of memberships, deletions of memberships before those of groups), as the
// publisher sends them. A group that turns into a guardian group or out of
// one keeps its members counted as they were until the next Index built
// from a whole export (a membership's record does not say its group's
// type, and the Index does not list a group's members).
func (x *Index) Apply(c Canonical) {
	if !x.built {
		panic("projection: Apply to an Index before Build")
	}
	d := int32(1)
	if c.Op == messages.OpDeleted {
		d = -1
	}
	rec := c.Record
	switch {
	case rec.Person != nil:
		if c.Op == messages.OpUpdated {
			x.link(c.Old.Person, -1)
		}
		x.link(rec.Person, d)
	case rec.Group != nil:
		k := hashID(rec.Group.SourcedID)
		if IsGuardianGroup(rec.Group) && c.Op != messages.OpDeleted {
			x.ggroups[k] = struct{}{}
		} else {
			delete(x.ggroups, k)
		}
	case rec.Membership != nil:
		if c.Op == messages.OpUpdated {
			return // the key holds the group and the member: neither changed
		}
		if _, guardians := x.ggroups[hashID(rec.Membership.Group)]; !guardians {
			count(x.roster, hashID(rec.Membership.Member), d)
		}
	}
}

// GuardianPerson implements Relations.
func (x *Index) GuardianPerson(id pifu.SourcedID) bool {
	if !x.built {
		panic("projection: Index used before Build")
	}
	h := hashID(id)
	return x.links[h] > 0 && x.roster[h] == 0
}

// GuardianGroup implements Relations.
func (x *Index) GuardianGroup(id pifu.SourcedID) bool {
	_, ok := x.ggroups[hashID(id)]
	return ok
}

// GuardianPersons is the number of persons who are guardians only (a link
// to a person the export does not hold counts too).
func (x *Index) GuardianPersons() int {
	n := 0
	for k := range x.links {
		if x.roster[k] == 0 {
			n++
		}
	}
	return n
}

var _ Relations = (*Index)(nil)
