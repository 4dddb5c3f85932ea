package projection_test

import (
	"bytes"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// secrets are the values of a record that only the contact and
// national_id parts may carry.
type secrets struct {
	contact, nin []string
}

func secretsOf(rec pifu.Record) secrets {
	var s secrets
	addTyped := func(ts []pifu.Typed) {
		for _, t := range ts {
			s.contact = append(s.contact, t.Value)
		}
	}
	addAdr := func(as []pifu.Address) {
		for _, a := range as {
			s.contact = append(s.contact, a.Street...)
			for _, v := range []string{a.POBox, a.ExtAdd, a.Locality, a.PCode} {
				if v != "" {
					s.contact = append(s.contact, v)
				}
			}
		}
	}
	switch {
	case rec.Person != nil:
		p := rec.Person
		for _, id := range p.UserIDs {
			if projection.IsNationalID(id.Type) {
				s.nin = append(s.nin, id.Value)
			}
		}
		if p.Email != "" {
			s.contact = append(s.contact, p.Email)
		}
		addTyped(p.Tel)
		addTyped(p.Emails)
		addTyped(p.Phones)
		addAdr(p.Addresses)
	case rec.Group != nil:
		g := rec.Group
		if g.Email != "" {
			s.contact = append(s.contact, g.Email)
		}
		addTyped(g.Emails)
		addTyped(g.Phones)
		addAdr(g.Addresses)
	}
	return s
}

// tally counts what a profile's projection of a whole export let through.
type tally struct {
	records, sent                 int
	contactIn, contactOut         int // records with contact data, before and after
	ninIn, ninOut                 int // persons with a national id, before and after
	linksOut, guardianPersonsSent int
}

// TestEveryRecordOfAnExport projects every record of a generated
// municipality's first export, as the publisher emits it, to four profiles,
// and checks each projected object byte for byte: roster never carries an
// e-mail, a phone, an address or a national id, nor a guardian; contact
// carries the contact data but never the national id; national_id only
// when named.
func TestEveryRecordOfAnExport(t *testing.T) {
	preset := "large"
	if testing.Short() {
		preset = "small"
	}
	doc := generated(t, preset, 0)[0]
	ix := index(t, doc)
	if ix.GuardianPersons() == 0 {
		t.Fatal("the export has no guardians: the test would prove nothing about them")
	}
	type vendor struct {
		name string
		p    *projection.Projector
		n    tally
	}
	vendors := []*vendor{
		{name: "roster", p: projector(t, profile(t), ix, ix)},
		{name: "contact", p: projector(t, profile(t, "contact"), ix, ix)},
		{name: "national_id", p: projector(t, profile(t, "national_id", "guardians"), ix, ix)},
		{name: "all", p: projector(t, profile(t, projection.PartNames()...), ix, ix)},
	}
	forbiddenKeys := map[string][]string{
		"roster":      {`"email"`, `"tel"`, `"addresses"`, `"emails"`, `"phones"`, `"personNIN"`, `"contact_persons"`, `"bday"`},
		"contact":     {`"personNIN"`, `"contact_persons"`},
		"national_id": {`"email"`, `"tel"`, `"addresses"`, `"emails"`, `"phones"`},
	}
	res := changes(t, nil, doc, func(c diff.Change) {
		if c.Op != diff.Created {
			t.Fatalf("a first export's change %s is %s", c.Key, c.Op)
		}
		rec, err := c.Record()
		if err != nil {
			t.Fatal(err)
		}
		sec := secretsOf(rec)
		guardian := rec.Person != nil && ix.GuardianPerson(rec.Person.SourcedID)
		for _, v := range vendors {
			v.n.records++
			if len(sec.contact) > 0 {
				v.n.contactIn++
			}
			if len(sec.nin) > 0 {
				v.n.ninIn++
			}
			ch, err := v.p.Event(c.Entity, messages.Op(c.Op), c.Object, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !ch.Sent() {
				continue
			}
			v.n.sent++
			if ch.Op != messages.OpCreated || xxhash.Sum64(ch.Object) != ch.Content {
				t.Fatalf("%s: %s %s: op %s, content hash %x of %x", v.name, c.Entity, c.Key, ch.Op, ch.Content, xxhash.Sum64(ch.Object))
			}
			if guardian {
				v.n.guardianPersonsSent++
			}
			if bytes.Contains(ch.Object, []byte(`"contact_persons"`)) {
				v.n.linksOut++
			}
			for _, k := range forbiddenKeys[v.name] {
				if bytes.Contains(ch.Object, []byte(k)) {
					t.Fatalf("%s: %s %s carries %s: %s", v.name, c.Entity, c.Key, k, ch.Object)
				}
			}
			contactOut, ninOut := false, false
			for _, s := range sec.contact {
				if bytes.Contains(ch.Object, []byte(s)) {
					contactOut = true
				}
			}
			for _, s := range sec.nin {
				if bytes.Contains(ch.Object, []byte(s)) {
					ninOut = true
				}
			}
			if contactOut {
				v.n.contactOut++
			}
			if ninOut {
				v.n.ninOut++
			}
		}
	})
	total := res.Plan.Total().Created
	for _, v := range vendors {
		n := v.n
		t.Logf("%s: %d of %d records sent; contact in %d, out %d; national id in %d, out %d; links %d; guardians sent %d",
			v.name, n.sent, n.records, n.contactIn, n.contactOut, n.ninIn, n.ninOut, n.linksOut, n.guardianPersonsSent)
		if n.records != total || n.contactIn == 0 || n.ninIn == 0 {
			t.Fatalf("%s: %d records of %d, %d with contact data, %d with a national id", v.name, n.records, total, n.contactIn, n.ninIn)
		}
	}
	roster, contact, nin, all := vendors[0].n, vendors[1].n, vendors[2].n, vendors[3].n
	if roster.contactOut != 0 || roster.ninOut != 0 || roster.linksOut != 0 || roster.guardianPersonsSent != 0 {
		t.Errorf("roster: %+v", roster)
	}
	if roster.sent != total-ix.GuardianPersons() {
		t.Errorf("roster: %d sent, want every record but the %d guardians (%d)", roster.sent, ix.GuardianPersons(), total-ix.GuardianPersons())
	}
	if contact.contactOut != contact.contactIn-ix.GuardianPersons() || contact.ninOut != 0 || contact.guardianPersonsSent != 0 {
		t.Errorf("contact: %+v (guardians %d)", contact, ix.GuardianPersons())
	}
	if nin.ninOut != nin.ninIn || nin.contactOut != 0 || nin.sent != total || nin.linksOut == 0 {
		t.Errorf("national_id: %+v", nin)
	}
	if all.sent != total || all.contactOut != all.contactIn || all.ninOut != all.ninIn {
		t.Errorf("all: %+v", all)
	}
}
