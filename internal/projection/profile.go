// Package projection cuts the records of the canonical events down to what
// one LMS vendor may receive: its profile, a set of parts of the records.
//
// The parts:
//
//   - roster, always included: the ids (sourcedids and user ids other than
//     the national identity number), names, status, preferred language,
//     groups and their types, relations and ids, and memberships;
//   - contact: e-mail, phone, address and web addresses, of persons and of
//     groups (a school's too);
//   - demographics: a person's gender, birthday and photo;
//   - guardians: relations between persons (a pupil's guardians and next of
//     kin, pifu_hasContactPerson), the records of persons who are guardians
//     only, guardian groups (foresattegruppe) and their memberships;
//   - national_id: the national identity number (user ids of type personNIN
//     and personNINencrypted), given only to a profile that names it.
//
// Data no part names is sent to no vendor: the extensions of persons and of
// memberships that the PIFU record types do not model (their content is not
// known; PIFU puts absence there).
//
// A record the profile removes entirely is dropped, and an update that
// changes only removed fields is not sent. A record's key never changes
// under projection (keys never involve the national identity number), so a
// vendor's state checksum is computed as the canonical one is
// (snapshot.Checksum), over the projected records.
package projection

import (
	"fmt"
	"strings"
)

// Part is one part of the records a profile can name.
type Part uint8

const (
	Roster Part = 1 << iota
	Contact
	Demographics
	Guardians
	NationalID
)

// partNames are the parts by name, in the order of the configuration's list.
var partNames = [...]struct {
	part Part
	name string
}{{Roster, "roster"}, {Contact, "contact"}, {Demographics, "demographics"}, {Guardians, "guardians"}, {NationalID, "national_id"}}

// PartNames lists the names of the parts, roster first.
func PartNames() []string {
	out := make([]string, len(partNames))
	for i, p := range partNames {
		out[i] = p.name
	}
	return out
}

// Profile is the set of parts one vendor receives; Roster is always in it.
// The zero value is the roster only.
type Profile uint8

// ParseProfile is the profile of the named parts, with roster added. An
// unknown name is an error naming it.
func ParseProfile(names ...string) (Profile, error) {
	p := Profile(Roster)
	for _, n := range names {
		found := false
		for _, x := range partNames {
			if x.name == n {
				p |= Profile(x.part)
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("projection: %q is not a part (the parts are %s)", n, strings.Join(PartNames(), ", "))
		}
	}
	return p, nil
}

// Has reports whether the profile includes part x. Roster is always in.
func (p Profile) Has(x Part) bool { return x == Roster || Part(p)&x != 0 }

// String names the profile's parts joined by '+', roster first.
func (p Profile) String() string {
	var b strings.Builder
	for _, x := range partNames {
		if p.Has(x.part) {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(x.name)
		}
	}
	return b.String()
}
