package projection

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// The fan-out decodes every record of an export before any vendor can
// publish, and encoding/json's reflection was most of that time. fastRecord
// reads a record's JSON by hand, for the shapes the publisher writes: the
// field names exactly as the record types' JSON tags spell them, each at
// most once, no nulls. Anything else (an unknown or differently cased
// name, a repeated field, a null, a value of the wrong kind, bad JSON) makes
// it report false, and the record is decoded with encoding/json instead:
// what fastRecord accepts, it decodes to the values encoding/json gives.

// fastRecord decodes object into rec, the record type of e, reporting false
// where encoding/json must do it.
func fastRecord(e pifu.Entity, object []byte, rec *pifu.Record) bool {
	r := reader{b: object}
	var ok bool
	switch e {
	case pifu.EntityPerson:
		p := new(pifu.Person)
		ok = r.person(p)
		*rec = pifu.Record{Person: p}
	case pifu.EntityOrg, pifu.EntityGroup:
		g := new(pifu.Group)
		ok = r.group(g)
		*rec = pifu.Record{Group: g}
	case pifu.EntityMembership:
		m := new(pifu.Membership)
		ok = r.membership(m)
		*rec = pifu.Record{Membership: m}
	default:
		return false
	}
	if !ok || r.space() != len(r.b) {
		*rec = pifu.Record{}
		return false
	}
	return true
}

// reader is a position in a record's JSON. Every method skips the
// whitespace before what it reads, and reports false on anything it does
// not take.
type reader struct {
	b []byte
	i int
}

func (r *reader) space() int {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return r.i
		}
	}
	return r.i
}

func (r *reader) next(c byte) bool {
	if r.space() < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// object reads a JSON object, calling field with each name (as written,
// between the quotes) with the reader at its value, which field reads.
// A field name seen twice is refused (bit of seen per name: field returns
// which).
func (r *reader) object(field func(name []byte) bool) bool {
	if !r.next('{') {
		return false
	}
	if r.next('}') {
		return true
	}
	for {
		if !r.next('"') {
			return false
		}
		j := bytes.IndexByte(r.b[r.i:], '"')
		if j < 0 {
			return false
		}
		name := r.b[r.i : r.i+j]
		r.i += j + 1
		if !r.next(':') || !field(name) {
			return false
		}
		if r.next(',') {
			continue
		}
		return r.next('}')
	}
}

// array reads a JSON array, calling elem with the reader at each element.
func (r *reader) array(elem func() bool) bool {
	if !r.next('[') {
		return false
	}
	if r.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if r.next(',') {
			continue
		}
		return r.next(']')
	}
}

// str reads a JSON string. One with escapes, control characters or bytes
// that are not UTF-8 is given to encoding/json.
func (r *reader) str(s *string) bool {
	if !r.next('"') {
		return false
	}
	start, plain := r.i, true
	for ; r.i < len(r.b); r.i++ {
		switch c := r.b[r.i]; {
		case c == '"':
			v := r.b[start:r.i]
			r.i++
			if plain {
				*s = string(v)
				return true
			}
			if utf8.Valid(v) && bytes.IndexByte(v, '\\') < 0 && !hasControl(v) {
				*s = string(v)
				return true
			}
			return json.Unmarshal(r.b[start-1:r.i], s) == nil
		case c == '\\':
			plain = false
			r.i++
		case c < 0x20 || c >= utf8.RuneSelf:
			plain = false
		}
	}
	return false
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// seen marks bit in *set, reporting false if it was marked already.
func seen(set *uint32, bit uint) bool {
	if *set&(1<<bit) != 0 {
		return false
	}
	*set |= 1 << bit
	return true
}

func (r *reader) strings(out *[]string) bool {
	v := []string{}
	ok := r.array(func() bool {
		var s string
		if !r.str(&s) {
			return false
		}
		v = append(v, s)
		return true
	})
	*out = v
	return ok
}

func (r *reader) sourcedID(s *pifu.SourcedID) bool {
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "source":
			return seen(&set, 0) && r.str(&s.Source)
		case "id":
			return seen(&set, 1) && r.str(&s.ID)
		case "type":
			return seen(&set, 2) && r.str(&s.Type)
		}
		return false
	})
}

func (r *reader) sourcedIDs(out *[]pifu.SourcedID) bool {
	v := []pifu.SourcedID{}
	ok := r.array(func() bool {
		v = append(v, pifu.SourcedID{})
		return r.sourcedID(&v[len(v)-1])
	})
	*out = v
	return ok
}

func (r *reader) typed(t *pifu.Typed) bool {
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "type":
			return seen(&set, 0) && r.str(&t.Type)
		case "value":
			return seen(&set, 1) && r.str(&t.Value)
		case "priority":
			return seen(&set, 2) && r.str(&t.Priority)
		case "lang":
			return seen(&set, 3) && r.str(&t.Lang)
		}
		return false
	})
}

func (r *reader) typeds(out *[]pifu.Typed) bool {
	v := []pifu.Typed{}
	ok := r.array(func() bool {
		v = append(v, pifu.Typed{})
		return r.typed(&v[len(v)-1])
	})
	*out = v
	return ok
}

func (r *reader) timeframe(out **pifu.Timeframe) bool {
	t := new(pifu.Timeframe)
	*out = t
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "begin":
			return seen(&set, 0) && r.str(&t.Begin)
		case "end":
			return seen(&set, 1) && r.str(&t.End)
		case "adminperiod":
			return seen(&set, 2) && r.str(&t.AdminPeriod)
		}
		return false
	})
}

func (r *reader) addresses(out *[]pifu.Address) bool {
	v := []pifu.Address{}
	ok := r.array(func() bool {
		v = append(v, pifu.Address{})
		a := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "type":
				return seen(&set, 0) && r.str(&a.Type)
			case "pobox":
				return seen(&set, 1) && r.str(&a.POBox)
			case "extadd":
				return seen(&set, 2) && r.str(&a.ExtAdd)
			case "street":
				return seen(&set, 3) && r.strings(&a.Street)
			case "locality":
				return seen(&set, 4) && r.str(&a.Locality)
			case "region":
				return seen(&set, 5) && r.str(&a.Region)
			case "pcode":
				return seen(&set, 6) && r.str(&a.PCode)
			case "country":
				return seen(&set, 7) && r.str(&a.Country)
			case "timeframe":
				return seen(&set, 8) && r.timeframe(&a.Timeframe)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) extensions(out *[]pifu.Extension) bool {
	v := []pifu.Extension{}
	ok := r.array(func() bool {
		v = append(v, pifu.Extension{})
		x := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "name":
				return seen(&set, 0) && r.str(&x.Name)
			case "type":
				return seen(&set, 1) && r.str(&x.Type)
			case "value":
				return seen(&set, 2) && r.str(&x.Value)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) person(p *pifu.Person) bool {
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "sourcedid":
			return seen(&set, 0) && r.sourcedID(&p.SourcedID)
		case "other_sourcedids":
			return seen(&set, 1) && r.sourcedIDs(&p.OtherIDs)
		case "userids":
			return seen(&set, 2) && r.typeds(&p.UserIDs)
		case "name":
			var nset uint32
			n := &p.Name
			return seen(&set, 3) && r.object(func(name []byte) bool {
				switch string(name) {
				case "fn":
					return seen(&nset, 0) && r.str(&n.Formatted)
				case "family":
					return seen(&nset, 1) && r.str(&n.Family)
				case "given":
					return seen(&nset, 2) && r.str(&n.Given)
				}
				return false
			})
		case "gender":
			return seen(&set, 4) && r.str(&p.Gender)
		case "bday":
			return seen(&set, 5) && r.str(&p.Birthday)
		case "email":
			return seen(&set, 6) && r.str(&p.Email)
		case "url":
			return seen(&set, 7) && r.str(&p.URL)
		case "tel":
			return seen(&set, 8) && r.typeds(&p.Tel)
		case "addresses":
			return seen(&set, 9) && r.addresses(&p.Addresses)
		case "photo":
			return seen(&set, 10) && r.str(&p.PhotoURL)
		case "emails":
			return seen(&set, 11) && r.typeds(&p.Emails)
		case "urls":
			return seen(&set, 12) && r.typeds(&p.URLs)
		case "phones":
			return seen(&set, 13) && r.typeds(&p.Phones)
		case "status":
			return seen(&set, 14) && r.typeds(&p.Status)
		case "preferred_language":
			return seen(&set, 15) && r.str(&p.Language)
		case "contact_persons":
			return seen(&set, 16) && r.contactLinks(&p.ContactPersons)
		case "extensions":
			return seen(&set, 17) && r.extensions(&p.Extensions)
		case "recstatus":
			return seen(&set, 18) && r.str(&p.RecStatus)
		}
		return false
	})
}

func (r *reader) contactLinks(out *[]pifu.ContactLink) bool {
	v := []pifu.ContactLink{}
	ok := r.array(func() bool {
		v = append(v, pifu.ContactLink{})
		c := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "type":
				return seen(&set, 0) && r.str(&c.Type)
			case "person":
				return seen(&set, 1) && r.sourcedID(&c.Person)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) group(g *pifu.Group) bool {
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "sourcedid":
			return seen(&set, 0) && r.sourcedID(&g.SourcedID)
		case "other_sourcedids":
			return seen(&set, 1) && r.sourcedIDs(&g.OtherIDs)
		case "grouptypes":
			return seen(&set, 2) && r.groupTypes(&g.Types)
		case "short":
			return seen(&set, 3) && r.str(&g.Short)
		case "long":
			return seen(&set, 4) && r.str(&g.Long)
		case "full":
			return seen(&set, 5) && r.str(&g.Full)
		case "timeframe":
			return seen(&set, 6) && r.timeframe(&g.Timeframe)
		case "email":
			return seen(&set, 7) && r.str(&g.Email)
		case "url":
			return seen(&set, 8) && r.str(&g.URL)
		case "relationships":
			return seen(&set, 9) && r.relationships(&g.Relationships)
		case "ids":
			return seen(&set, 10) && r.extIDs(&g.IDs)
		case "names":
			return seen(&set, 11) && r.typeds(&g.Names)
		case "school_types":
			return seen(&set, 12) && r.strings(&g.SchoolTypes)
		case "emails":
			return seen(&set, 13) && r.typeds(&g.Emails)
		case "urls":
			return seen(&set, 14) && r.typeds(&g.URLs)
		case "phones":
			return seen(&set, 15) && r.typeds(&g.Phones)
		case "addresses":
			return seen(&set, 16) && r.addresses(&g.Addresses)
		case "extensions":
			return seen(&set, 17) && r.extensions(&g.Extensions)
		case "recstatus":
			return seen(&set, 18) && r.str(&g.RecStatus)
		}
		return false
	})
}

func (r *reader) groupTypes(out *[]pifu.GroupType) bool {
	v := []pifu.GroupType{}
	ok := r.array(func() bool {
		v = append(v, pifu.GroupType{})
		t := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "scheme":
				return seen(&set, 0) && r.str(&t.Scheme)
			case "value":
				return seen(&set, 1) && r.str(&t.Value)
			case "level":
				return seen(&set, 2) && r.str(&t.Level)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) relationships(out *[]pifu.Relationship) bool {
	v := []pifu.Relationship{}
	ok := r.array(func() bool {
		v = append(v, pifu.Relationship{})
		x := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "relation":
				return seen(&set, 0) && r.str(&x.Relation)
			case "target":
				return seen(&set, 1) && r.sourcedID(&x.Target)
			case "label":
				return seen(&set, 2) && r.str(&x.Label)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) extIDs(out *[]pifu.ExtID) bool {
	v := []pifu.ExtID{}
	ok := r.array(func() bool {
		v = append(v, pifu.ExtID{})
		x := &v[len(v)-1]
		var set uint32
		return r.object(func(name []byte) bool {
			switch string(name) {
			case "type":
				return seen(&set, 0) && r.str(&x.Type)
			case "value":
				return seen(&set, 1) && r.str(&x.Value)
			case "scope":
				return seen(&set, 2) && r.str(&x.Scope)
			case "unique":
				return seen(&set, 3) && r.str(&x.Unique)
			}
			return false
		})
	})
	*out = v
	return ok
}

func (r *reader) membership(m *pifu.Membership) bool {
	var set uint32
	return r.object(func(name []byte) bool {
		switch string(name) {
		case "group":
			return seen(&set, 0) && r.sourcedID(&m.Group)
		case "member":
			return seen(&set, 1) && r.sourcedID(&m.Member)
		case "idtype":
			return seen(&set, 2) && r.str(&m.IDType)
		case "roletype":
			return seen(&set, 3) && r.str(&m.RoleType)
		case "subrole":
			return seen(&set, 4) && r.str(&m.Subrole)
		case "status":
			return seen(&set, 5) && r.str(&m.Status)
		case "timeframe":
			return seen(&set, 6) && r.timeframe(&m.Timeframe)
		case "primary":
			return seen(&set, 7) && r.str(&m.Primary)
		case "datetime":
			return seen(&set, 8) && r.str(&m.DateTime)
		case "extensions":
			return seen(&set, 9) && r.extensions(&m.Extensions)
		case "recstatus":
			return seen(&set, 10) && r.str(&m.RecStatus)
		case "incomplete":
			return seen(&set, 11) && r.strings(&m.Incomplete)
		}
		return false
	})
}

// fastOverlay is overlay without reflection, for objects and previous
// values whose top-level field names have no escapes and appear once each:
// the fields of object, those of previous laid over them (a null one
// removed), read by fastRecord. It reports false where overlay must do it.
func fastOverlay(e pifu.Entity, object, previous []byte) (pifu.Record, bool) {
	if !json.Valid(object) || !json.Valid(previous) {
		return pifu.Record{}, false
	}
	of, ok := topFields(object)
	if !ok {
		return pifu.Record{}, false
	}
	pf, ok := topFields(previous)
	if !ok {
		return pifu.Record{}, false
	}
	merged := make([]byte, 0, len(object)+len(previous))
	merged = append(merged, '{')
	add := func(f rawField) {
		if len(merged) > 1 {
			merged = append(merged, ',')
		}
		merged = append(merged, '"')
		merged = append(merged, f.name...)
		merged = append(merged, '"', ':')
		merged = append(merged, f.val...)
	}
outer:
	for _, f := range of {
		for _, p := range pf {
			if bytes.Equal(p.name, f.name) {
				continue outer
			}
		}
		add(f)
	}
	for _, p := range pf {
		if !bytes.Equal(p.val, []byte("null")) {
			add(p)
		}
	}
	merged = append(merged, '}')
	var rec pifu.Record
	if !fastRecord(e, merged, &rec) {
		return pifu.Record{}, false
	}
	return rec, true
}

// rawField is one top-level field of a JSON object: its name as written
// and its value.
type rawField struct{ name, val []byte }

// topFields splits a valid JSON object into its top-level fields,
// reporting false for anything but an object, a name with escapes, or a
// name written twice.
func topFields(obj []byte) ([]rawField, bool) {
	r := reader{b: obj}
	if !r.next('{') {
		return nil, false
	}
	var out []rawField
	if r.next('}') {
		return out, r.space() == len(obj)
	}
	for {
		if !r.next('"') {
			return nil, false
		}
		j := bytes.IndexByte(r.b[r.i:], '"')
		if j < 0 {
			return nil, false
		}
		name := r.b[r.i : r.i+j]
		if bytes.IndexByte(name, '\\') >= 0 {
			return nil, false
		}
		for _, f := range out {
			if bytes.Equal(f.name, name) {
				return nil, false
			}
		}
		r.i += j + 1
		if !r.next(':') {
			return nil, false
		}
		start := r.space()
		end, ok := valueEnd(obj, start)
		if !ok {
			return nil, false
		}
		out = append(out, rawField{name, obj[start:end]})
		r.i = end
		if r.next(',') {
			continue
		}
		return out, r.next('}') && r.space() == len(obj)
	}
}

// valueEnd is the index just past the value at b[i] of JSON known to be
// valid.
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1, true
			}
		}
		return 0, false
	case '{', '[':
		depth, inString := 0, false
		for ; i < len(b); i++ {
			c := b[i]
			switch {
			case inString:
				switch c {
				case '\\':
					i++
				case '"':
					inString = false
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, true
		}
	}
	return i, true
}
