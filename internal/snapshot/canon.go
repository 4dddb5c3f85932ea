package snapshot

import (
	"github.com/skolebuss/skolebuss/internal/jsonenc"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// appendCanonical appends the record's canonical JSON: byte for byte what
// json.Marshal(rec.Object()) produces (fields in declaration order,
// omitempty as tagged, nil slices without omitempty as null, strings escaped
// with HTML escaping, invalid UTF-8 as U+FFFD), without reflection. The
// publisher hashes every record of every export, and encoding/json was most
// of that cost. TestCanonicalMatchesMarshal fills every field of the record
// types by reflection and compares: a field added to a record type without
// adding it here fails that test.
func appendCanonical(b []byte, rec pifu.Record) []byte {
	switch {
	case rec.Group != nil:
		return appendGroup(b, rec.Group)
	case rec.Person != nil:
		return appendPerson(b, rec.Person)
	case rec.Membership != nil:
		return appendMembership(b, rec.Membership)
	}
	return append(b, "null"...)
}

func appendPerson(b []byte, p *pifu.Person) []byte {
	b = append(b, `{"sourcedid":`...)
	b = appendSourcedID(b, &p.SourcedID)
	b = appendSourcedIDs(b, `,"other_sourcedids":`, p.OtherIDs)
	b = appendTypeds(b, `,"userids":`, p.UserIDs)
	b = append(b, `,"name":{"fn":`...)
	b = jsonenc.AppendString(b, p.Name.Formatted)
	b = append(b, `,"family":`...)
	b = jsonenc.AppendString(b, p.Name.Family)
	b = append(b, `,"given":`...)
	b = jsonenc.AppendString(b, p.Name.Given)
	b = append(b, '}')
	b = appendOmit(b, `,"gender":`, p.Gender)
	b = appendOmit(b, `,"bday":`, p.Birthday)
	b = appendOmit(b, `,"email":`, p.Email)
	b = appendOmit(b, `,"url":`, p.URL)
	b = appendTypeds(b, `,"tel":`, p.Tel)
	b = appendAddresses(b, p.Addresses)
	b = appendOmit(b, `,"photo":`, p.PhotoURL)
	b = appendTypeds(b, `,"emails":`, p.Emails)
	b = appendTypeds(b, `,"urls":`, p.URLs)
	b = appendTypeds(b, `,"phones":`, p.Phones)
	b = appendTypeds(b, `,"status":`, p.Status)
	b = appendOmit(b, `,"preferred_language":`, p.Language)
	if len(p.ContactPersons) > 0 {
		b = append(b, `,"contact_persons":[`...)
		for i := range p.ContactPersons {
			c := &p.ContactPersons[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = jsonenc.AppendString(b, c.Type)
			b = append(b, `,"person":`...)
			b = appendSourcedID(b, &c.Person)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendExtensions(b, p.Extensions)
	b = appendOmit(b, `,"recstatus":`, p.RecStatus)
	return append(b, '}')
}

func appendGroup(b []byte, g *pifu.Group) []byte {
	b = append(b, `{"sourcedid":`...)
	b = appendSourcedID(b, &g.SourcedID)
	b = appendSourcedIDs(b, `,"other_sourcedids":`, g.OtherIDs)
	b = append(b, `,"grouptypes":`...)
	if g.Types == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range g.Types {
			t := &g.Types[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"scheme":`...)
			b = jsonenc.AppendString(b, t.Scheme)
			b = append(b, `,"value":`...)
			b = jsonenc.AppendString(b, t.Value)
			b = appendOmit(b, `,"level":`, t.Level)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"short":`...)
	b = jsonenc.AppendString(b, g.Short)
	b = appendOmit(b, `,"long":`, g.Long)
	b = appendOmit(b, `,"full":`, g.Full)
	b = appendTimeframe(b, g.Timeframe)
	b = appendOmit(b, `,"email":`, g.Email)
	b = appendOmit(b, `,"url":`, g.URL)
	if len(g.Relationships) > 0 {
		b = append(b, `,"relationships":[`...)
		for i := range g.Relationships {
			r := &g.Relationships[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"relation":`...)
			b = jsonenc.AppendString(b, r.Relation)
			b = append(b, `,"target":`...)
			b = appendSourcedID(b, &r.Target)
			b = appendOmit(b, `,"label":`, r.Label)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(g.IDs) > 0 {
		b = append(b, `,"ids":[`...)
		for i := range g.IDs {
			x := &g.IDs[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = jsonenc.AppendString(b, x.Type)
			b = append(b, `,"value":`...)
			b = jsonenc.AppendString(b, x.Value)
			b = appendOmit(b, `,"scope":`, x.Scope)
			b = appendOmit(b, `,"unique":`, x.Unique)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendTypeds(b, `,"names":`, g.Names)
	if len(g.SchoolTypes) > 0 {
		b = append(b, `,"school_types":`...)
		b = appendStrings(b, g.SchoolTypes)
	}
	b = appendTypeds(b, `,"emails":`, g.Emails)
	b = appendTypeds(b, `,"urls":`, g.URLs)
	b = appendTypeds(b, `,"phones":`, g.Phones)
	b = appendAddresses(b, g.Addresses)
	b = appendExtensions(b, g.Extensions)
	b = appendOmit(b, `,"recstatus":`, g.RecStatus)
	return append(b, '}')
}

func appendMembership(b []byte, m *pifu.Membership) []byte {
	b = append(b, `{"group":`...)
	b = appendSourcedID(b, &m.Group)
	b = append(b, `,"member":`...)
	b = appendSourcedID(b, &m.Member)
	b = appendOmit(b, `,"idtype":`, m.IDType)
	b = append(b, `,"roletype":`...)
	b = jsonenc.AppendString(b, m.RoleType)
	b = appendOmit(b, `,"subrole":`, m.Subrole)
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, m.Status)
	b = appendTimeframe(b, m.Timeframe)
	b = appendOmit(b, `,"primary":`, m.Primary)
	b = appendOmit(b, `,"datetime":`, m.DateTime)
	b = appendExtensions(b, m.Extensions)
	b = appendOmit(b, `,"recstatus":`, m.RecStatus)
	b = appendIncomplete(b, m.Incomplete)
	return append(b, '}')
}

func appendIncomplete(b []byte, marks []string) []byte {
	if len(marks) == 0 {
		return b
	}
	b = append(b, `,"incomplete":`...)
	return appendStrings(b, marks)
}

// WithIncomplete appends to dst a membership's canonical JSON obj (as
// Hasher.Content wrote it, with no Incomplete) with Incomplete set to marks:
// the bytes Hasher.Content writes for the membership with that field set.
// Incomplete is the membership's last field, so it goes before the closing
// brace.
func WithIncomplete(dst, obj []byte, marks []string) []byte {
	if len(marks) == 0 || len(obj) == 0 {
		return append(dst, obj...)
	}
	dst = append(dst, obj[:len(obj)-1]...)
	dst = appendIncomplete(dst, marks)
	return append(dst, '}')
}

func appendSourcedID(b []byte, s *pifu.SourcedID) []byte {
	b = append(b, `{"source":`...)
	b = jsonenc.AppendString(b, s.Source)
	b = append(b, `,"id":`...)
	b = jsonenc.AppendString(b, s.ID)
	b = appendOmit(b, `,"type":`, s.Type)
	return append(b, '}')
}

// appendSourcedIDs appends name and the list, unless it is empty
// (omitempty).
func appendSourcedIDs(b []byte, name string, ids []pifu.SourcedID) []byte {
	if len(ids) == 0 {
		return b
	}
	b = append(b, name...)
	b = append(b, '[')
	for i := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSourcedID(b, &ids[i])
	}
	return append(b, ']')
}

// appendTypeds appends name and the list, unless it is empty (omitempty).
func appendTypeds(b []byte, name string, ts []pifu.Typed) []byte {
	if len(ts) == 0 {
		return b
	}
	b = append(b, name...)
	b = append(b, '[')
	for i := range ts {
		t := &ts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if t.Type != "" {
			b = append(b, `"type":`...)
			b = jsonenc.AppendString(b, t.Type)
			b = append(b, ',')
		}
		b = append(b, `"value":`...)
		b = jsonenc.AppendString(b, t.Value)
		b = appendOmit(b, `,"priority":`, t.Priority)
		b = appendOmit(b, `,"lang":`, t.Lang)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendAddresses(b []byte, as []pifu.Address) []byte {
	if len(as) == 0 {
		return b
	}
	b = append(b, `,"addresses":[`...)
	for i := range as {
		a := &as[i]
		if i > 0 {
			b = append(b, ',')
		}
		// Every field is omitempty: the first one written has no comma.
		start := len(b)
		b = append(b, '{')
		field := func(name string) {
			if len(b) > start+1 {
				b = append(b, ',')
			}
			b = append(b, name...)
		}
		if a.Type != "" {
			field(`"type":`)
			b = jsonenc.AppendString(b, a.Type)
		}
		if a.POBox != "" {
			field(`"pobox":`)
			b = jsonenc.AppendString(b, a.POBox)
		}
		if a.ExtAdd != "" {
			field(`"extadd":`)
			b = jsonenc.AppendString(b, a.ExtAdd)
		}
		if len(a.Street) > 0 {
			field(`"street":`)
			b = appendStrings(b, a.Street)
		}
		if a.Locality != "" {
			field(`"locality":`)
			b = jsonenc.AppendString(b, a.Locality)
		}
		if a.Region != "" {
			field(`"region":`)
			b = jsonenc.AppendString(b, a.Region)
		}
		if a.PCode != "" {
			field(`"pcode":`)
			b = jsonenc.AppendString(b, a.PCode)
		}
		if a.Country != "" {
			field(`"country":`)
			b = jsonenc.AppendString(b, a.Country)
		}
		if a.Timeframe != nil {
			field(`"timeframe":`)
			b = appendTimeframeObject(b, a.Timeframe)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendTimeframe appends ,"timeframe":{...} unless t is nil (omitempty).
func appendTimeframe(b []byte, t *pifu.Timeframe) []byte {
	if t == nil {
		return b
	}
	b = append(b, `,"timeframe":`...)
	return appendTimeframeObject(b, t)
}

func appendTimeframeObject(b []byte, t *pifu.Timeframe) []byte {
	b = append(b, '{')
	sep := false
	for _, f := range [...]struct{ name, v string }{{`"begin":`, t.Begin}, {`"end":`, t.End}, {`"adminperiod":`, t.AdminPeriod}} {
		if f.v == "" {
			continue
		}
		if sep {
			b = append(b, ',')
		}
		sep = true
		b = append(b, f.name...)
		b = jsonenc.AppendString(b, f.v)
	}
	return append(b, '}')
}

func appendExtensions(b []byte, es []pifu.Extension) []byte {
	if len(es) == 0 {
		return b
	}
	b = append(b, `,"extensions":[`...)
	for i := range es {
		e := &es[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = jsonenc.AppendString(b, e.Name)
		b = appendOmit(b, `,"type":`, e.Type)
		b = appendOmit(b, `,"value":`, e.Value)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, ']')
}

// appendOmit appends name and s unless s is empty (omitempty).
func appendOmit(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, name...)
	return jsonenc.AppendString(b, s)
}
