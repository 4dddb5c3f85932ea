package projection

import (
	"net/url"
	"strings"

	"github.com/cespare/xxhash/v2"

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
// Records may be added in any order. The Index holds 16 bytes a membership
// until Build, and a hash set of the linked persons and guardian groups
// after. It is not safe for concurrent use until built; a built Index is
// read-only.
type Index struct {
	linked  map[uint64]struct{} // persons some person links to
	ggroups map[uint64]struct{} // guardian groups
	members [][2]uint64         // (member, group) of every membership, until Build
	roster  map[uint64]struct{} // linked persons with a membership in a group that is not a guardian group
	built   bool
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{linked: map[uint64]struct{}{}, ggroups: map[uint64]struct{}{}}
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

// Add takes one record of the export into account.
func (x *Index) Add(rec pifu.Record) {
	switch {
	case rec.Person != nil:
		for _, c := range rec.Person.ContactPersons {
			x.linked[hashID(c.Person)] = struct{}{}
		}
	case rec.Group != nil:
		if IsGuardianGroup(rec.Group) {
			x.ggroups[hashID(rec.Group.SourcedID)] = struct{}{}
		}
	case rec.Membership != nil:
		x.members = append(x.members, [2]uint64{hashID(rec.Membership.Member), hashID(rec.Membership.Group)})
	}
}

// Build ends the adding: it resolves the memberships of the linked persons.
// The Index answers only after Build.
func (x *Index) Build() *Index {
	x.roster = map[uint64]struct{}{}
	for _, m := range x.members {
		if _, linked := x.linked[m[0]]; !linked {
			continue
		}
		if _, guardians := x.ggroups[m[1]]; !guardians {
			x.roster[m[0]] = struct{}{}
		}
	}
	x.members, x.built = nil, true
	return x
}

// GuardianPerson implements Relations.
func (x *Index) GuardianPerson(id pifu.SourcedID) bool {
	if !x.built {
		panic("projection: Index used before Build")
	}
	h := hashID(id)
	_, linked := x.linked[h]
	_, roster := x.roster[h]
	return linked && !roster
}

// GuardianGroup implements Relations.
func (x *Index) GuardianGroup(id pifu.SourcedID) bool {
	_, ok := x.ggroups[hashID(id)]
	return ok
}

// GuardianPersons is the number of persons who are guardians only (a link
// to a person the export does not hold counts too).
func (x *Index) GuardianPersons() int { return len(x.linked) - len(x.roster) }

var _ Relations = (*Index)(nil)
