package rostergen

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"testing"
)

// A small reader of the export with encoding/xml, independent of the
// generator, for the tests to check what a consumer would see.

type xSID struct {
	Type   string `xml:"sourcedidtype,attr"`
	Source string `xml:"source"`
	ID     string `xml:"id"`
}

type xValue struct {
	Type  string `xml:"useridtype,attr"`
	Value string `xml:",chardata"`
}

type xPerson struct {
	SIDs     []xSID   `xml:"sourcedid"`
	UserIDs  []xValue `xml:"userid"`
	FN       string   `xml:"name>fn"`
	Family   string   `xml:"name>n>family"`
	Given    string   `xml:"name>n>given"`
	Gender   string   `xml:"demographics>gender"`
	Bday     string   `xml:"demographics>bday"`
	Email    string   `xml:"email"`
	Tel      []string `xml:"tel"`
	Contacts []struct {
		Type string `xml:"type,attr"`
		SID  xSID   `xml:"sourcedid"`
	} `xml:"extension>pifu_hasContactPerson"`
}

func (p *xPerson) key() string { return keyOf(p.SIDs) }

func (p *xPerson) userID(typ string) (string, bool) {
	for _, u := range p.UserIDs {
		if u.Type == typ {
			return u.Value, true
		}
	}
	return "", false
}

type xGroup struct {
	SIDs      []xSID `xml:"sourcedid"`
	GroupType []struct {
		Scheme    string `xml:"scheme"`
		TypeValue struct {
			Level string `xml:"level,attr"`
			Value string `xml:",chardata"`
		} `xml:"typevalue"`
	} `xml:"grouptype"`
	Short       string `xml:"description>short"`
	AdminPeriod string `xml:"timeframe>adminperiod"`
	Rels        []struct {
		Relation string `xml:"relation,attr"`
		SID      xSID   `xml:"sourcedid"`
		Label    string `xml:"label"`
	} `xml:"relationship"`
	IDs []struct {
		Type  string `xml:"type,attr"`
		Value string `xml:"pifu_value"`
	} `xml:"extension>pifu_id"`
}

func (g *xGroup) typeValue() string { return g.GroupType[0].TypeValue.Value }
func (g *xGroup) isOrg() bool       { return g.GroupType[0].Scheme == "pifu-ims-go-org" }

type xMembership struct {
	Group   xSID `xml:"sourcedid"`
	Members []struct {
		SID    xSID   `xml:"sourcedid"`
		IDType string `xml:"idtype"`
		Roles  []struct {
			RoleType string `xml:"roletype,attr"`
			Subrole  string `xml:"subrole"`
			Status   string `xml:"status"`
			Begin    string `xml:"timeframe>begin"`
			End      string `xml:"timeframe>end"`
		} `xml:"role"`
	} `xml:"member"`
}

// keyOf returns the id of the New sourcedid, or of the only one.
func keyOf(sids []xSID) string {
	for _, s := range sids {
		if s.Type == "New" {
			return s.ID
		}
	}
	return sids[0].ID
}

type role struct{ group, member, roletype string }

type doc struct {
	datasource, typ, datetime string
	persons                   map[string]*xPerson
	groups                    map[string]*xGroup
	roles                     map[role]string // → begin date
	records                   int             // membership records (role elements)
	untimed                   int             // membership records without a timeframe begin and end
	subroles                  map[string]int
	order                     []string // top-level element names in order
}

func parseDoc(t testing.TB, data []byte) *doc {
	t.Helper()
	d := &doc{persons: map[string]*xPerson{}, groups: map[string]*xGroup{}, roles: map[role]string{}, subroles: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "enterprise" && se.Name.Space != "http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1" {
			t.Fatalf("element %s in namespace %q", se.Name.Local, se.Name.Space)
		}
		switch se.Name.Local {
		case "properties":
			var p struct {
				DataSource string `xml:"datasource"`
				Type       string `xml:"type"`
				DateTime   string `xml:"datetime"`
			}
			must(t, dec.DecodeElement(&p, &se))
			d.datasource, d.typ, d.datetime = p.DataSource, p.Type, p.DateTime
		case "person":
			p := &xPerson{}
			must(t, dec.DecodeElement(p, &se))
			if d.persons[p.key()] != nil {
				t.Fatalf("person %s twice", p.key())
			}
			d.persons[p.key()] = p
		case "group":
			g := &xGroup{}
			must(t, dec.DecodeElement(g, &se))
			if d.groups[keyOf(g.SIDs)] != nil {
				t.Fatalf("group %s twice", keyOf(g.SIDs))
			}
			d.groups[keyOf(g.SIDs)] = g
		case "membership":
			var ms xMembership
			must(t, dec.DecodeElement(&ms, &se))
			for _, mem := range ms.Members {
				for _, r := range mem.Roles {
					k := role{ms.Group.ID, mem.SID.ID, r.RoleType}
					if _, dup := d.roles[k]; dup {
						t.Fatalf("membership %v twice", k)
					}
					d.roles[k] = r.Begin
					if r.Begin == "" || r.End == "" {
						d.untimed++
					}
					d.subroles[r.Subrole]++
					d.records++
				}
			}
		default:
			continue
		}
		if n := len(d.order); n == 0 || d.order[n-1] != se.Name.Local {
			d.order = append(d.order, se.Name.Local)
		}
	}
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kind classifies a person as a parser would: by its user ids.
func (p *xPerson) kind() string {
	if _, ok := p.userID("studentID"); ok {
		return "pupil"
	}
	if _, ok := p.userID("workforceID"); ok {
		return "staff"
	}
	return "guardian"
}

func (d *doc) stats() Stats {
	var s Stats
	for _, p := range d.persons {
		switch p.kind() {
		case "pupil":
			s.Pupils++
		case "staff":
			s.Staff++
		default:
			s.Guardians++
		}
	}
	s.Persons = len(d.persons)
	for _, g := range d.groups {
		if g.isOrg() {
			s.Orgs++
		} else {
			s.Groups++
		}
	}
	s.Memberships = d.records
	return s
}

func export(t testing.TB, m *Municipality, gen uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := m.WriteExport(context.Background(), &buf, gen)
	if err != nil {
		t.Fatalf("WriteExport(%d): %v", gen, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteExport(%d) returned %d bytes, wrote %d", gen, n, buf.Len())
	}
	return buf.Bytes()
}
