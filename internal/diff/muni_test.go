package diff_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// muni is a small synthetic municipality, listed in PIFU document order:
// persons, then groups (the owner, the schools, then classes), then
// memberships.
type muni struct {
	persons []*pifu.Person
	groups  []*pifu.Group
	members []*pifu.Membership
}

func sid(id string) pifu.SourcedID { return pifu.SourcedID{Source: "flyt", ID: id} }

// newMuni makes schools x classes x pupils pupils, one teacher a class.
func newMuni(seed uint64, schools, classes, pupils int) *muni {
	rnd := rand.New(rand.NewPCG(seed, 1))
	m := &muni{}
	m.groups = append(m.groups, &pifu.Group{SourcedID: sid("owner"), Short: "Kommune",
		Types: []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "skoleeier"}}})
	for s := range schools {
		m.groups = append(m.groups, &pifu.Group{SourcedID: sid(fmt.Sprintf("s%d", s)), Short: fmt.Sprintf("Skole %d", s),
			Types:         []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "skole"}},
			Relationships: []pifu.Relationship{{Relation: "1", Target: sid("owner")}}})
	}
	for s := range schools {
		for c := range classes {
			g := &pifu.Group{SourcedID: sid(fmt.Sprintf("s%dc%d", s, c)), Short: fmt.Sprintf("%dA", c+1),
				Types:         []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe"}},
				Relationships: []pifu.Relationship{{Relation: "1", Target: sid(fmt.Sprintf("s%d", s))}}}
			m.groups = append(m.groups, g)
			t := m.addPerson(rnd, fmt.Sprintf("s%dc%dt", s, c))
			m.members = append(m.members, &pifu.Membership{Group: g.SourcedID, Member: t.SourcedID, RoleType: "02", Status: "1"})
			for p := range pupils {
				pp := m.addPerson(rnd, fmt.Sprintf("s%dc%dp%d", s, c, p))
				m.members = append(m.members, &pifu.Membership{Group: g.SourcedID, Member: pp.SourcedID, RoleType: "01", Status: "1"})
			}
		}
	}
	return m
}

var givenNames = []string{"Ola", "Kari", "Nora", "Jakob", "Emma", "Filip", "Ingrid", "Lukas"}

func (m *muni) addPerson(rnd *rand.Rand, id string) *pifu.Person {
	p := &pifu.Person{SourcedID: sid(id)}
	g := givenNames[rnd.IntN(len(givenNames))]
	p.Name = pifu.Name{Formatted: g + " Nordmann", Family: "Nordmann", Given: g}
	p.UserIDs = []pifu.Typed{{Type: "studentID", Value: fmt.Sprint(rnd.Uint32())}}
	if len(m.persons)%2 == 0 { // persons 0, 2, 4 ... have an e-mail
		p.Email = id + "@skole.example"
	}
	m.persons = append(m.persons, p)
	return p
}

// records lists the municipality in document order.
func (m *muni) records() []pifu.Record {
	out := make([]pifu.Record, 0, len(m.persons)+len(m.groups)+len(m.members))
	line := 1
	for _, p := range m.persons {
		out = append(out, pifu.Record{Person: p, Line: line})
		line += 10
	}
	for _, g := range m.groups {
		out = append(out, pifu.Record{Group: g, Line: line})
		line += 10
	}
	for _, ms := range m.members {
		out = append(out, pifu.Record{Membership: ms, Line: line})
		line += 5
	}
	return out
}

// clone is a deep copy.
func (m *muni) clone() *muni {
	b, err := json.Marshal(struct {
		P []*pifu.Person
		G []*pifu.Group
		M []*pifu.Membership
	}{m.persons, m.groups, m.members})
	if err != nil {
		panic(err)
	}
	var c struct {
		P []*pifu.Person
		G []*pifu.Group
		M []*pifu.Membership
	}
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &muni{persons: c.P, groups: c.G, members: c.M}
}

// sliceReader is a RecordReader over a slice.
type sliceReader struct {
	recs []pifu.Record
	read int
}

func reader(recs []pifu.Record) *sliceReader { return &sliceReader{recs: recs} }

func (r *sliceReader) Next() (pifu.Record, error) {
	if r.read == len(r.recs) {
		return pifu.Record{}, io.EOF
	}
	r.read++
	return r.recs[r.read-1], nil
}

type closer struct{ closed *int }

func (c closer) Close() error { *c.closed++; return nil }
