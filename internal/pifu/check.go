package pifu

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
)

// FindingKind classifies what Check found.
type FindingKind string

const (
	// FindingDangling is a reference to a record the document does not
	// hold: a membership's group or member, a contact link's person, a
	// group's parent.
	FindingDangling FindingKind = "dangling-reference"
	// FindingDuplicate is a key that a record of the same entity had
	// already (persons, groups and orgs, memberships by group+member+role).
	FindingDuplicate FindingKind = "duplicate-key"
	// FindingMissing is a required field that is absent or empty.
	FindingMissing FindingKind = "missing-field"
	// FindingUnknownType is a group type outside the PIFU-IMS 1.3 list,
	// reported once per type. The group is still read.
	FindingUnknownType FindingKind = "unknown-group-type"
)

// Finding is one problem in a document. Key is the record's key (a
// sourcedid, never a national id); Line and Column locate the record.
type Finding struct {
	Kind   FindingKind `json:"kind"`
	Key    string      `json:"key,omitempty"`
	Line   int         `json:"line"`
	Column int         `json:"column"`
	Detail string      `json:"detail"`
}

// MaxFindings caps Report.Findings; FindingsByKind still counts them all.
const MaxFindings = 10000

// Report is what Check found in a document.
type Report struct {
	Properties Properties `json:"properties"`
	Records    int        `json:"records"`
	// Entities counts records per entity.
	Entities map[Entity]int `json:"entities"`
	// GroupTypes counts orgs and groups per grouptype value ("skole",
	// "basisgruppe" ...); a group with two types counts under each.
	GroupTypes map[string]int `json:"group_types"`
	// Roles counts memberships per roletype ("01", "02" ...).
	Roles          map[string]int      `json:"roles"`
	Findings       []Finding           `json:"findings"`
	FindingsByKind map[FindingKind]int `json:"findings_by_kind"`
	// FindingsDropped is how many findings are past MaxFindings.
	FindingsDropped int `json:"findings_dropped,omitempty"`
}

// knownGroupTypes is the PIFU-IMS 1.3 grouptype list (scheme/typevalue).
var knownGroupTypes = map[string]bool{
	"pifu-ims-go-org/skoleeier": true, "pifu-ims-go-org/skole": true,
	"pifu-ims-go-grp/basisgruppe": true, "pifu-ims-go-grp/undervisningsgruppe": true,
	"pifu-ims-go-grp/kontaktlærergruppe": true, "pifu-ims-go-grp/trinn": true,
	"pifu-ims-go-grp/utdanningsprogram": true, "pifu-ims-go-grp/programområde": true,
	"pifu-ims-go-grp/fag": true, "pifu-ims-go-grp/foresattegruppe": true,
	"pifu-ims-go-grp/språkopplæring": true, "pifu-ims-go-grp/sammensattgruppe": true,
	"pifu-ims-go-grp/elevråd": true, "pifu-ims-go-grp/fau": true, "pifu-ims-go-grp/skoleutvalg": true,
	"pifu-ims-go-grp/skolemiljøutvalg": true, "pifu-ims-go-grp/sfo": true, "pifu-ims-go-grp/eksamensgruppe": true,
}

// ref is a reference whose target may come later in the document.
type ref struct {
	target       uint64 // hash of the target key
	from, key    string // what refers, and to what
	line, column int
}

// checker holds what Check needs across records: hashes of the keys seen
// (8 bytes a record, not the keys) and the references to resolve at the end.
type checker struct {
	seed        maphash.Seed
	groups      map[uint64]struct{}
	persons     map[uint64]struct{}
	memberships map[uint64]struct{}
	refsGroup   []ref // targets that must be groups (or orgs)
	refsPerson  []ref // targets that must be persons
	unknown     map[string]bool
	rep         *Report
}

func (c *checker) hash(s string) uint64 { return maphash.String(c.seed, s) }

func (c *checker) add(kind FindingKind, key string, line, col int, format string, args ...any) {
	c.rep.FindingsByKind[kind]++
	if len(c.rep.Findings) >= MaxFindings {
		c.rep.FindingsDropped++
		return
	}
	c.rep.Findings = append(c.rep.Findings, Finding{Kind: kind, Key: key, Line: line, Column: col, Detail: fmt.Sprintf(format, args...)})
}

// Check consumes a decoder and reports what is in the document and what is
// wrong with it: dangling references, duplicate keys and missing required
// fields are findings, never errors. The error is the decoder's (a
// *SyntaxError or a read error); the Report then covers the records before
// it. Check holds 8 bytes per record and the references it has not resolved
// yet, not the records.
func Check(d *Decoder) (Report, error) {
	rep := Report{
		Entities:       map[Entity]int{},
		GroupTypes:     map[string]int{},
		Roles:          map[string]int{},
		FindingsByKind: map[FindingKind]int{},
		Findings:       []Finding{},
	}
	c := &checker{
		seed: maphash.MakeSeed(), groups: map[uint64]struct{}{}, persons: map[uint64]struct{}{},
		memberships: map[uint64]struct{}{}, unknown: map[string]bool{}, rep: &rep,
	}
	var err error
	for {
		var r Record
		r, err = d.Next()
		if err != nil {
			break
		}
		rep.Records++
		rep.Entities[r.Entity()]++
		switch {
		case r.Person != nil:
			c.person(r)
		case r.Group != nil:
			c.group(r)
		default:
			c.membership(r)
		}
	}
	rep.Properties = d.Properties()
	if errors.Is(err, io.EOF) {
		err = nil
		c.properties(rep.Properties)
	}
	c.resolve(c.refsGroup, c.groups, "group")
	c.resolve(c.refsPerson, c.persons, "person")
	return rep, err
}

func (c *checker) properties(p Properties) {
	if p.Datasource == "" {
		c.add(FindingMissing, "", 0, 0, "properties have no datasource")
	}
	if p.Type == "" {
		c.add(FindingMissing, "", 0, 0, "properties have no type")
	}
}

// sourcedid checks a sourcedid's parts; it reports whether it has both.
func (c *checker) sourcedid(what, key string, s SourcedID, r Record) bool {
	switch {
	case s.IsZero():
		c.add(FindingMissing, key, r.Line, r.Column, "%s has no sourcedid", what)
	case s.Source == "":
		c.add(FindingMissing, key, r.Line, r.Column, "%s sourcedid has no source", what)
	case s.ID == "":
		c.add(FindingMissing, key, r.Line, r.Column, "%s sourcedid has no id", what)
	default:
		return true
	}
	return false
}

func (c *checker) person(r Record) {
	p := r.Person
	key := p.SourcedID.Key()
	if c.sourcedid("person", "", p.SourcedID, r) {
		h := c.hash(key)
		if _, dup := c.persons[h]; dup {
			c.add(FindingDuplicate, key, r.Line, r.Column, "person %s appears more than once", key)
		}
		c.persons[h] = struct{}{}
	}
	switch {
	case p.Name.Formatted == "":
		c.add(FindingMissing, key, r.Line, r.Column, "person has no name (name/fn)")
	case p.Name.Family == "" || p.Name.Given == "":
		c.add(FindingMissing, key, r.Line, r.Column, "person's name lacks n/family or n/given")
	}
	for _, u := range p.UserIDs {
		if u.Type == "" {
			c.add(FindingMissing, key, r.Line, r.Column, "userid without useridtype")
		}
	}
	for _, l := range p.ContactPersons {
		if l.Person.IsZero() {
			c.add(FindingMissing, key, r.Line, r.Column, "%s link without a sourcedid", l.Type)
			continue
		}
		c.refsPerson = append(c.refsPerson, ref{
			target: c.hash(l.Person.Key()), from: key, key: readable(l.Person), line: r.Line, column: r.Column,
		})
	}
}

func (c *checker) group(r Record) {
	g := r.Group
	key := g.SourcedID.Key()
	if c.sourcedid(string(r.Entity()), "", g.SourcedID, r) {
		h := c.hash(key)
		if _, dup := c.groups[h]; dup {
			c.add(FindingDuplicate, key, r.Line, r.Column, "group %s appears more than once", key)
		}
		c.groups[h] = struct{}{}
	}
	if len(g.Types) == 0 {
		c.add(FindingMissing, key, r.Line, r.Column, "group has no grouptype")
	}
	for _, t := range g.Types {
		c.rep.GroupTypes[t.Value]++
		switch {
		case t.Value == "" || t.Scheme == "":
			c.add(FindingMissing, key, r.Line, r.Column, "grouptype lacks scheme or typevalue")
		case !knownGroupTypes[strings.ToLower(t.Scheme)+"/"+t.Value] && !c.unknown[t.Scheme+"/"+t.Value]:
			c.unknown[t.Scheme+"/"+t.Value] = true
			c.add(FindingUnknownType, key, r.Line, r.Column, "group type %s/%s is not in PIFU-IMS 1.3 (kept)", t.Scheme, t.Value)
		}
	}
	if g.Short == "" {
		c.add(FindingMissing, key, r.Line, r.Column, "group has no description/short")
	}
	if parent, ok := g.Parent(); !ok {
		c.add(FindingMissing, key, r.Line, r.Column, "group has no parent relationship")
	} else if !parent.IsZero() {
		c.refsGroup = append(c.refsGroup, ref{
			target: c.hash(parent.Key()), from: key, key: readable(parent), line: r.Line, column: r.Column,
		})
	}
}

func (c *checker) membership(r Record) {
	m := r.Membership
	key := m.Key()
	c.rep.Roles[m.RoleType]++
	okG := c.sourcedid("membership group", key, m.Group, r)
	okM := c.sourcedid("member", key, m.Member, r)
	if m.RoleType == "" {
		c.add(FindingMissing, key, r.Line, r.Column, "role has no roletype")
	}
	if m.Status == "" {
		c.add(FindingMissing, key, r.Line, r.Column, "role has no status")
	}
	if m.IDType != "" && m.IDType != "1" {
		c.add(FindingMissing, key, r.Line, r.Column, "member idtype is %q, want 1 (person)", m.IDType)
	}
	if okG && okM {
		h := c.hash(key)
		if _, dup := c.memberships[h]; dup {
			c.add(FindingDuplicate, key, r.Line, r.Column, "membership %s appears more than once", key)
		}
		c.memberships[h] = struct{}{}
	}
	// Groups and persons come before memberships in a valid document, so
	// most references resolve at once; the rest wait for the end.
	if okG {
		if h := c.hash(m.Group.Key()); !has(c.groups, h) {
			c.refsGroup = append(c.refsGroup, ref{target: h, from: key, key: readable(m.Group), line: r.Line, column: r.Column})
		}
	}
	if okM {
		if h := c.hash(m.Member.Key()); !has(c.persons, h) {
			c.refsPerson = append(c.refsPerson, ref{target: h, from: key, key: readable(m.Member), line: r.Line, column: r.Column})
		}
	}
}

// readable is a sourcedid for people to read: source and id as written.
func readable(s SourcedID) string { return s.Source + " " + s.ID }

func has(m map[uint64]struct{}, h uint64) bool { _, ok := m[h]; return ok }

func (c *checker) resolve(refs []ref, set map[uint64]struct{}, what string) {
	for _, r := range refs {
		if !has(set, r.target) {
			c.add(FindingDangling, r.from, r.line, r.column, "refers to %s %q, which is not in the document", what, r.key)
		}
	}
}
