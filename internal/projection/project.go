package projection

import (
	"errors"
	"strings"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Projector cuts records to one profile. It works on the typed records and
// reuses its own memory: a projected record is valid until the next call
// (it shares the input's slices that it keeps whole, and the Projector's
// scratch for the ones it filters). A Projector is not safe for concurrent
// use; give each goroutine its own.
type Projector struct {
	prof          Profile
	before, after Relations

	person  pifu.Person
	group   pifu.Group
	member  pifu.Membership
	userIDs []pifu.Typed
	hasher  *snapshot.Hasher
}

// ErrNoRelations is returned by New for a profile without guardians and no
// Relations to tell guardians from the roster.
var ErrNoRelations = errors.New("projection: a profile without guardians needs the export's relations")

// New returns a Projector for profile p. rel tells guardians from the
// roster; it may be nil only when p has Guardians. Both the record before a
// change and after it are judged by rel until SetRelations says otherwise.
func New(p Profile, rel Relations) (*Projector, error) {
	if rel == nil && !p.Has(Guardians) {
		return nil, ErrNoRelations
	}
	return &Projector{prof: p, before: rel, after: rel}, nil
}

// Profile is the Projector's profile.
func (p *Projector) Profile() Profile { return p.prof }

// SetRelations sets the relations of the state a change applies to (before:
// the previous export's) and of the state it makes (after: the export's
// own): a deletion is judged by before, a creation by after, an update's
// old record by before and its new one by after. A guardian deleted with
// the pupil who linked to it is thus dropped, not sent as a deletion of a
// record the vendor never had. Either may be nil only when the profile has
// Guardians.
func (p *Projector) SetRelations(before, after Relations) error {
	if (before == nil || after == nil) && !p.prof.Has(Guardians) {
		return ErrNoRelations
	}
	p.before, p.after = before, after
	return nil
}

// Record returns rec cut to the profile, judged by the relations after the
// change (a state's record), and false when the profile removes the record
// entirely.
func (p *Projector) Record(rec pifu.Record) (pifu.Record, bool) {
	return p.project(rec, p.after)
}

// project cuts rec with the guardians judged by rel.
func (p *Projector) project(rec pifu.Record, rel Relations) (pifu.Record, bool) {
	guardians := p.prof.Has(Guardians)
	switch {
	case rec.Person != nil:
		in := rec.Person
		if !guardians && rel.GuardianPerson(in.SourcedID) {
			return pifu.Record{}, false
		}
		out := &p.person
		*out = *in
		if !p.prof.Has(NationalID) {
			out.UserIDs = p.withoutNationalID(in.UserIDs)
		}
		if !p.prof.Has(Contact) {
			out.Email, out.URL = "", ""
			out.Tel, out.Addresses, out.Emails, out.URLs, out.Phones = nil, nil, nil, nil, nil
		}
		if !p.prof.Has(Demographics) {
			out.Gender, out.Birthday, out.PhotoURL = "", "", ""
		}
		if !guardians {
			out.ContactPersons = nil
		}
		out.Extensions = nil
		return pifu.Record{Person: out, Line: rec.Line, Column: rec.Column}, true
	case rec.Group != nil:
		in := rec.Group
		if !guardians && (IsGuardianGroup(in) || rel.GuardianGroup(in.SourcedID)) {
			return pifu.Record{}, false
		}
		if p.prof.Has(Contact) {
			return rec, true
		}
		out := &p.group
		*out = *in
		out.Email, out.URL = "", ""
		out.Emails, out.URLs, out.Phones, out.Addresses = nil, nil, nil, nil
		return pifu.Record{Group: out, Line: rec.Line, Column: rec.Column}, true
	case rec.Membership != nil:
		in := rec.Membership
		if !guardians && (rel.GuardianGroup(in.Group) || rel.GuardianPerson(in.Member)) {
			return pifu.Record{}, false
		}
		if len(in.Extensions) == 0 {
			return rec, true
		}
		out := &p.member
		*out = *in
		out.Extensions = nil
		return pifu.Record{Membership: out, Line: rec.Line, Column: rec.Column}, true
	}
	return pifu.Record{}, false
}

// IsNationalID reports whether a user id type is the national identity
// number: personNIN (fødselsnummer, D-number or DUF number) or
// personNINencrypted (the same, two-way encrypted).
func IsNationalID(userIDType string) bool {
	return strings.EqualFold(userIDType, "personNIN") || strings.EqualFold(userIDType, "personNINencrypted")
}

// withoutNationalID is ids without the national identity numbers: ids
// itself when it has none, else a copy in the Projector's scratch.
func (p *Projector) withoutNationalID(ids []pifu.Typed) []pifu.Typed {
	i := 0
	for i < len(ids) && !IsNationalID(ids[i].Type) {
		i++
	}
	if i == len(ids) {
		return ids
	}
	out := append(p.userIDs[:0], ids[:i]...)
	for _, t := range ids[i+1:] {
		if !IsNationalID(t.Type) {
			out = append(out, t)
		}
	}
	p.userIDs = out
	if len(out) == 0 {
		return nil // as the record would be without them: omitted
	}
	return out
}
