// Package pifu reads PIFU-IMS (IMS Enterprise 1.1, Norwegian profile) documents
// as a stream of typed records, and defines those records.
//
// The record types have a stable JSON form: it is the "object" of the change
// events that skolebuss publishes, so a field renamed here is a breaking change
// of the event schema (see internal/messages and docs/schemas).
package pifu

import (
	"net/url"
	"strings"
)

// Entity names the four kinds of record a PIFU document carries, as they
// appear in event subjects (lms.<tenant>.<entity>.<op>).
type Entity string

const (
	EntityOrg        Entity = "org"        // a group with scheme pifu-ims-go-org: school owner, school
	EntityGroup      Entity = "group"      // every other group: class, teaching group, grade level, ...
	EntityPerson     Entity = "person"     // pupils, staff and guardians alike
	EntityMembership Entity = "membership" // one group + member + roletype
)

// Entities lists the entities in the order their creations and updates are
// applied: orgs and groups before the persons, persons before memberships.
// Deletions go in the reverse order.
var Entities = []Entity{EntityOrg, EntityGroup, EntityPerson, EntityMembership}

// SourcedID is the PIFU sourcedid: the source system and the permanent id in it.
type SourcedID struct {
	Source string `json:"source"`
	ID     string `json:"id"`
	// Type is the optional sourcedidtype: "New", "Old" or "Duplicate".
	Type string `json:"type,omitempty"`
}

// Key is the stable, unambiguous string form of a sourcedid: source and id,
// each path-escaped, joined by "/". It never involves the national id number.
func (s SourcedID) Key() string {
	return url.PathEscape(s.Source) + "/" + url.PathEscape(s.ID)
}

// IsZero reports whether the sourcedid has neither source nor id.
func (s SourcedID) IsZero() bool { return s.Source == "" && s.ID == "" }

// Typed is a value with a type attribute (userid, tel, pifu_email, pifu_tel,
// pifu_status, pifu_name ...). Priority is kept as written.
type Typed struct {
	Type     string `json:"type,omitempty"`
	Value    string `json:"value"`
	Priority string `json:"priority,omitempty"`
	// Lang is the language of a pifu_name (pifu_language), if given.
	Lang string `json:"lang,omitempty"`
}

// Name is the person's formatted name and its family and given parts.
type Name struct {
	Formatted string `json:"fn"`
	Family    string `json:"family"`
	Given     string `json:"given"`
}

// Address is an IMS adr element; Type is the pifu_adr type when it came from
// the extension, empty for the plain adr.
type Address struct {
	Type     string   `json:"type,omitempty"`
	POBox    string   `json:"pobox,omitempty"`
	ExtAdd   string   `json:"extadd,omitempty"`
	Street   []string `json:"street,omitempty"`
	Locality string   `json:"locality,omitempty"`
	Region   string   `json:"region,omitempty"`
	PCode    string   `json:"pcode,omitempty"`
	Country  string   `json:"country,omitempty"`
	// Timeframe is the validity of a pifu_adr (a holiday address), if given.
	Timeframe *Timeframe `json:"timeframe,omitempty"`
}

// Timeframe is a validity period. Dates are kept as written (xs:date).
type Timeframe struct {
	Begin       string `json:"begin,omitempty"`
	End         string `json:"end,omitempty"`
	AdminPeriod string `json:"adminperiod,omitempty"`
}

// ContactLink is a pifu_hasContactPerson: Type is "guardian" or "nextOfKin",
// Person points at another person in the same document.
type ContactLink struct {
	Type   string    `json:"type"`
	Person SourcedID `json:"person"`
}

// Extension is an extension element this package does not model, kept as
// its name and its text content so that nothing is silently dropped.
type Extension struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// Person is a <person>: a pupil, a member of staff or a guardian.
type Person struct {
	SourcedID SourcedID `json:"sourcedid"`
	// OtherIDs are the sourcedids that are not the key (Old, Duplicate).
	OtherIDs []SourcedID `json:"other_sourcedids,omitempty"`
	// UserIDs holds every userid by its useridtype (personNIN, studentID,
	// feideID ...). The national id number is here and only here.
	UserIDs        []Typed       `json:"userids,omitempty"`
	Name           Name          `json:"name"`
	Gender         string        `json:"gender,omitempty"`
	Birthday       string        `json:"bday,omitempty"`
	Email          string        `json:"email,omitempty"`
	URL            string        `json:"url,omitempty"`
	Tel            []Typed       `json:"tel,omitempty"`
	Addresses      []Address     `json:"addresses,omitempty"`
	PhotoURL       string        `json:"photo,omitempty"`
	Emails         []Typed       `json:"emails,omitempty"`
	URLs           []Typed       `json:"urls,omitempty"`
	Phones         []Typed       `json:"phones,omitempty"`
	Status         []Typed       `json:"status,omitempty"`
	Language       string        `json:"preferred_language,omitempty"`
	ContactPersons []ContactLink `json:"contact_persons,omitempty"`
	Extensions     []Extension   `json:"extensions,omitempty"`
	RecStatus      string        `json:"recstatus,omitempty"`
}

// GroupType is one grouptype: scheme, type value and its level.
type GroupType struct {
	Scheme string `json:"scheme"`
	Value  string `json:"value"`
	Level  string `json:"level,omitempty"`
}

// Relationship links a group to another: Relation "1" is parent, "3" is
// also-known-as.
type Relationship struct {
	Relation string    `json:"relation"`
	Target   SourcedID `json:"target"`
	Label    string    `json:"label,omitempty"`
}

// ExtID is a pifu_id: organizationNumber, grepCode, grepCodeShortForm ...
type ExtID struct {
	Type   string `json:"type"`
	Value  string `json:"value"`
	Scope  string `json:"scope,omitempty"`
	Unique string `json:"unique,omitempty"`
}

// Group is a <group>: an organisation (school owner, school) or a group of
// persons (class, teaching group, grade level ...).
type Group struct {
	SourcedID     SourcedID      `json:"sourcedid"`
	OtherIDs      []SourcedID    `json:"other_sourcedids,omitempty"`
	Types         []GroupType    `json:"grouptypes"`
	Short         string         `json:"short"`
	Long          string         `json:"long,omitempty"`
	Full          string         `json:"full,omitempty"`
	Timeframe     *Timeframe     `json:"timeframe,omitempty"`
	Email         string         `json:"email,omitempty"`
	URL           string         `json:"url,omitempty"`
	Relationships []Relationship `json:"relationships,omitempty"`
	IDs           []ExtID        `json:"ids,omitempty"`
	Names         []Typed        `json:"names,omitempty"`
	SchoolTypes   []string       `json:"school_types,omitempty"`
	// Emails, URLs, Phones and Addresses are an org unit's pifu_email,
	// pifu_url, pifu_tel and pifu_adr extensions.
	Emails     []Typed     `json:"emails,omitempty"`
	URLs       []Typed     `json:"urls,omitempty"`
	Phones     []Typed     `json:"phones,omitempty"`
	Addresses  []Address   `json:"addresses,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
	RecStatus  string      `json:"recstatus,omitempty"`
}

// SchemeOrg is the grouptype scheme of organisations and org units.
const SchemeOrg = "pifu-ims-go-org"

// Entity is EntityOrg for a group whose grouptype scheme is pifu-ims-go-org,
// EntityGroup otherwise.
func (g *Group) Entity() Entity {
	for _, t := range g.Types {
		if strings.EqualFold(t.Scheme, SchemeOrg) {
			return EntityOrg
		}
	}
	return EntityGroup
}

// Parent is the sourcedid of the group's parent (relation 1), if any.
func (g *Group) Parent() (SourcedID, bool) {
	for _, r := range g.Relationships {
		if r.Relation == "1" || strings.EqualFold(r.Relation, "parent") {
			return r.Target, true
		}
	}
	return SourcedID{}, false
}

// Membership is one role of one member in one group: a <membership> with n
// members and m roles each yields n*m records.
type Membership struct {
	Group     SourcedID  `json:"group"`
	Member    SourcedID  `json:"member"`
	IDType    string     `json:"idtype,omitempty"`
	RoleType  string     `json:"roletype"`
	Subrole   string     `json:"subrole,omitempty"`
	Status    string     `json:"status"`
	Timeframe *Timeframe `json:"timeframe,omitempty"`
	Primary   string     `json:"primary,omitempty"`
	// DateTime is the role's <datetime>: when its status last changed.
	DateTime   string      `json:"datetime,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
	RecStatus  string      `json:"recstatus,omitempty"`
	// Incomplete says what the membership lacks in its document, in the
	// order IncompleteGroup, then IncompletePerson or IncompleteGroupMember;
	// empty when it is whole. The decoder never sets it: the publisher does,
	// once it knows the whole document (see Incompleteness). It is the last
	// field, and part of the record's content, so a membership whose person
	// leaves the document is an update.
	Incomplete []string `json:"incomplete,omitempty"`
}

// What a membership's Incomplete names.
const (
	IncompleteGroup       = "group"        // its group is not in the document
	IncompletePerson      = "person"       // its member, a person, is not in the document
	IncompleteGroupMember = "group-member" // its member is a group, not a person
)

// IDTypeGroup is the member idtype of a group in IMS Enterprise (1 is a
// person). The PIFU schema allows only persons as members.
const IDTypeGroup = "2"

// MemberKind is what a membership's member turned out to be in its document.
type MemberKind uint8

const (
	MemberPerson  MemberKind = iota // a person of the document
	MemberGroup                     // a group or org of the document, or idtype 2
	MemberMissing                   // nothing of the document
)

// The values Incompleteness returns, shared: callers must not modify them.
var (
	incompleteNone  []string
	incompleteG     = []string{IncompleteGroup}
	incompleteP     = []string{IncompletePerson}
	incompleteGM    = []string{IncompleteGroupMember}
	incompleteGP    = []string{IncompleteGroup, IncompletePerson}
	incompleteGGM   = []string{IncompleteGroup, IncompleteGroupMember}
	incompleteTable = [2][3][]string{
		{incompleteG, incompleteGGM, incompleteGP},  // group not in the document
		{incompleteNone, incompleteGM, incompleteP}, // group in the document
	}
)

// MarksIn is the Incomplete of a membership whose group key is group and
// member key is member (SourcedID.Key) and whose member idtype is idtype,
// in a document of which has tells whether it holds the record of an
// entity and key.
func MarksIn(has func(e Entity, key string) bool, group, member, idtype string) []string {
	groupFound := has(EntityGroup, group) || has(EntityOrg, group)
	kind := MemberPerson
	switch {
	case idtype == IDTypeGroup:
		kind = MemberGroup
	case has(EntityPerson, member):
	case has(EntityGroup, member) || has(EntityOrg, member):
		kind = MemberGroup
	default:
		kind = MemberMissing
	}
	return Incompleteness(groupFound, kind)
}

// Incompleteness is a membership's Incomplete: whether its group is in the
// document, and what its member is there. A member declared a group (idtype
// 2) is a group member whether or not that group is in the document. The
// slice is shared (nil when the membership is whole); do not modify it.
func Incompleteness(groupFound bool, member MemberKind) []string {
	g := 0
	if groupFound {
		g = 1
	}
	return incompleteTable[g][member]
}

// Key is group + member + roletype: the membership's identity.
func (m *Membership) Key() string {
	return m.Group.Key() + "|" + m.Member.Key() + "|" + url.PathEscape(m.RoleType)
}

// Record is one record of a document: exactly one of Group, Person and
// Membership is set.
type Record struct {
	Group      *Group
	Person     *Person
	Membership *Membership
	// Line and Column locate the record's start tag in the document.
	Line, Column int
}

// Entity names the record's entity.
func (r Record) Entity() Entity {
	switch {
	case r.Group != nil:
		return r.Group.Entity()
	case r.Person != nil:
		return EntityPerson
	default:
		return EntityMembership
	}
}

// Key is the record's identity within its tenant and entity.
func (r Record) Key() string {
	switch {
	case r.Group != nil:
		return r.Group.SourcedID.Key()
	case r.Person != nil:
		return r.Person.SourcedID.Key()
	default:
		return r.Membership.Key()
	}
}

// Object is the record's payload for JSON encoding.
func (r Record) Object() any {
	switch {
	case r.Group != nil:
		return r.Group
	case r.Person != nil:
		return r.Person
	default:
		return r.Membership
	}
}
