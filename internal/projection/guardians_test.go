package projection_test

import (
	"encoding/json"
	"testing"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
)

func sid(id string) pifu.SourcedID { return pifu.SourcedID{Source: "vfs", ID: id} }

func obj(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// family is a pupil with two guardians, one of whom teaches the pupil's
// class, and a guardian group holding the other.
func family() []pifu.Record {
	pupil := &pifu.Person{SourcedID: sid("pupil"), Name: pifu.Name{Formatted: "Ola"},
		UserIDs:        []pifu.Typed{{Type: "personNIN", Value: "01021599999"}, {Type: "studentID", Value: "880123"}},
		ContactPersons: []pifu.ContactLink{{Type: "guardian", Person: sid("mother")}, {Type: "nextOfKin", Person: sid("teacher")}}}
	mother := &pifu.Person{SourcedID: sid("mother"), Name: pifu.Name{Formatted: "Kari"}, Email: "kari@example.no"}
	teacher := &pifu.Person{SourcedID: sid("teacher"), Name: pifu.Name{Formatted: "Per"}, Email: "per@skole.no"}
	class := &pifu.Group{SourcedID: sid("5a"), Short: "5A", Types: []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe", Level: "1"}}}
	parents := &pifu.Group{SourcedID: sid("5a-parents"), Short: "Foresatte 5A", Types: []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "foresattegruppe", Level: "8"}}}
	return []pifu.Record{
		{Person: pupil}, {Person: mother}, {Person: teacher}, {Group: class}, {Group: parents},
		{Membership: &pifu.Membership{Group: sid("5a"), Member: sid("pupil"), RoleType: "01", Status: "1"}},
		{Membership: &pifu.Membership{Group: sid("5a"), Member: sid("teacher"), RoleType: "02", Status: "1"}},
		{Membership: &pifu.Membership{Group: sid("5a-parents"), Member: sid("mother"), RoleType: "04", Status: "1"}},
	}
}

func TestGuardians(t *testing.T) {
	recs := family()
	ix := projection.NewIndex()
	// The memberships first: the index does not depend on the order.
	for i := len(recs) - 1; i >= 0; i-- {
		ix.Add(recs[i])
	}
	ix.Build()
	if !ix.GuardianPerson(sid("mother")) || ix.GuardianPerson(sid("teacher")) || ix.GuardianPerson(sid("pupil")) ||
		!ix.GuardianGroup(sid("5a-parents")) || ix.GuardianGroup(sid("5a")) || ix.GuardianPersons() != 1 {
		t.Fatalf("index: mother %v teacher %v pupil %v", ix.GuardianPerson(sid("mother")), ix.GuardianPerson(sid("teacher")), ix.GuardianPerson(sid("pupil")))
	}
	sent := func(p *projection.Projector) map[string]string {
		out := map[string]string{}
		for _, r := range recs {
			if pr, ok := p.Record(r); ok {
				out[string(r.Entity())+" "+r.Key()] = string(obj(t, pr.Object()))
			}
		}
		return out
	}
	roster := sent(projector(t, profile(t), ix, ix))
	want := []string{"person vfs/pupil", "person vfs/teacher", "group vfs/5a",
		"membership vfs/5a|vfs/pupil|01", "membership vfs/5a|vfs/teacher|02"}
	if len(roster) != len(want) {
		t.Errorf("roster sent %d records: %v", len(roster), roster)
	}
	for _, k := range want {
		if _, ok := roster[k]; !ok {
			t.Errorf("roster: %s not sent", k)
		}
	}
	if got, w := roster["person vfs/pupil"], `{"sourcedid":{"source":"vfs","id":"pupil"},"userids":[{"type":"studentID","value":"880123"}],"name":{"fn":"Ola","family":"","given":""}}`; got != w {
		t.Errorf("roster pupil:\n got %s\nwant %s", got, w)
	}
	all := sent(projector(t, profile(t, "guardians", "contact", "national_id"), nil, nil))
	if len(all) != len(recs) {
		t.Errorf("guardians: %d of %d sent", len(all), len(recs))
	}
	if got := all["person vfs/pupil"]; got != string(obj(t, recs[0].Person)) {
		t.Errorf("guardians+contact+national_id pupil: %s", got)
	}
	if _, err := projection.New(profile(t, "contact"), nil); err == nil {
		t.Error("a profile without guardians was built without relations")
	}
}

func TestParseProfile(t *testing.T) {
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{nil, "roster"}, {[]string{"roster"}, "roster"}, {[]string{"national_id", "contact"}, "roster+contact+national_id"},
		{projection.PartNames(), "roster+contact+demographics+guardians+national_id"},
	} {
		p, err := projection.ParseProfile(tc.parts...)
		if err != nil || p.String() != tc.want {
			t.Errorf("%v: %v %v, want %s", tc.parts, p, err, tc.want)
		}
	}
	if p := profile(t, "contact"); p.Has(projection.NationalID) || !p.Has(projection.Roster) || !p.Has(projection.Contact) {
		t.Errorf("contact: %s", p)
	}
	if _, err := projection.ParseProfile("roster", "nin"); err == nil {
		t.Error("nin parsed")
	}
}

// update is the canonical body of an update from old to cur: the object
// and the previous values of the changed top-level fields, as the
// publisher writes them.
func update(t *testing.T, old, cur *pifu.Person) (object, previous []byte) {
	t.Helper()
	var of, cf map[string]json.RawMessage
	if err := json.Unmarshal(obj(t, old), &of); err != nil {
		t.Fatal(err)
	}
	object = obj(t, cur)
	if err := json.Unmarshal(object, &cf); err != nil {
		t.Fatal(err)
	}
	prev := map[string]json.RawMessage{}
	for k, v := range cf {
		if ov, ok := of[k]; !ok {
			prev[k] = json.RawMessage("null")
		} else if string(ov) != string(v) {
			prev[k] = ov
		}
	}
	for k, v := range of {
		if _, ok := cf[k]; !ok {
			prev[k] = v
		}
	}
	return object, obj(t, prev)
}

func TestUpdates(t *testing.T) {
	base := pifu.Person{SourcedID: sid("p"), Name: pifu.Name{Formatted: "Ola"},
		UserIDs: []pifu.Typed{{Type: "personNIN", Value: "01021599999"}, {Type: "studentID", Value: "1"}},
		Tel:     []pifu.Typed{{Type: "3", Value: "+4790000000"}}, Gender: "2"}
	with := func(f func(p *pifu.Person)) *pifu.Person {
		p := base
		p.UserIDs = append([]pifu.Typed(nil), base.UserIDs...)
		f(&p)
		return &p
	}
	newPhone := with(func(p *pifu.Person) { p.Tel = []pifu.Typed{{Type: "3", Value: "+4791111111"}} })
	newNIN := with(func(p *pifu.Person) { p.UserIDs[0].Value = "01021588888" })
	newName := with(func(p *pifu.Person) { p.Name.Formatted = "Ola N"; p.UserIDs[0].Value = "01021588888" })
	newMail := with(func(p *pifu.Person) { p.Email = "ola@example.no" })
	newGender := with(func(p *pifu.Person) { p.Gender = "1" })
	roster, contact, nin := profile(t), profile(t, "contact"), profile(t, "national_id")
	for _, tc := range []struct {
		name     string
		prof     projection.Profile
		cur      *pifu.Person
		op       messages.Op
		previous string
	}{
		{"phone to roster", roster, newPhone, "", ""},
		{"phone to contact", contact, newPhone, messages.OpUpdated, `{"tel":[{"type":"3","value":"+4790000000"}]}`},
		{"national id to contact", contact, newNIN, "", ""},
		{"national id to national_id", nin, newNIN, messages.OpUpdated,
			`{"userids":[{"type":"personNIN","value":"01021599999"},{"type":"studentID","value":"1"}]}`},
		{"name and national id to roster", roster, newName, messages.OpUpdated, `{"name":{"fn":"Ola","family":"","given":""}}`},
		{"e-mail added, to contact", contact, newMail, messages.OpUpdated, `{"email":null}`},
		{"e-mail added, to roster", roster, newMail, "", ""},
		{"gender to contact", contact, newGender, "", ""},
	} {
		object, previous := update(t, &base, tc.cur)
		none := projection.NewIndex().Build()
		p := projector(t, tc.prof, none, none)
		ch, err := p.Event(pifu.EntityPerson, messages.OpUpdated, object, previous)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Op != tc.op || string(ch.Previous) != tc.previous {
			t.Errorf("%s: op %q previous %s, want %q %s", tc.name, ch.Op, ch.Previous, tc.op, tc.previous)
		}
		if tc.op == messages.OpUpdated && (ch.Old == 0 || ch.Old == ch.Content) {
			t.Errorf("%s: content %x old %x", tc.name, ch.Content, ch.Old)
		}
	}
}

// A person who stops teaching and stays a guardian leaves a roster-only
// vendor's view with a deletion; one who starts teaching enters it with a
// creation; a guardian deleted with the pupil who linked to it is judged
// by the state before and is not sent.
func TestTransitions(t *testing.T) {
	recs := family()
	build := func(rs []pifu.Record) *projection.Index {
		x := projection.NewIndex()
		for _, r := range rs {
			x.Add(r)
		}
		return x.Build()
	}
	withTeacher := build(recs)
	var noClass []pifu.Record // the teacher's membership gone: a guardian only
	for _, r := range recs {
		if r.Membership == nil || r.Membership.Member.ID != "teacher" {
			noClass = append(noClass, r)
		}
	}
	guardianOnly := build(noClass)
	old := recs[2].Person
	cur := *old
	cur.Name.Formatted = "Per Berg"
	object, previous := update(t, old, &cur)

	p := projector(t, profile(t), withTeacher, guardianOnly)
	ch, err := p.Event(pifu.EntityPerson, messages.OpUpdated, object, previous)
	if err != nil || ch.Op != messages.OpDeleted || ch.Content != 0 || ch.Old == 0 {
		t.Errorf("teacher to guardian: %+v %v", ch, err)
	}
	p = projector(t, profile(t), guardianOnly, withTeacher)
	ch, err = p.Event(pifu.EntityPerson, messages.OpUpdated, object, previous)
	if err != nil || ch.Op != messages.OpCreated || ch.Old != 0 || string(ch.Object) != `{"sourcedid":{"source":"vfs","id":"teacher"},"name":{"fn":"Per Berg","family":"","given":""}}` {
		t.Errorf("guardian to teacher: %+v %s %v", ch, ch.Object, err)
	}
	// The mother deleted with the pupil: judged by before, where she is a guardian.
	p = projector(t, profile(t), withTeacher, build(nil))
	ch, err = p.Event(pifu.EntityPerson, messages.OpDeleted, obj(t, recs[1].Person), nil)
	if err != nil || ch.Sent() {
		t.Errorf("guardian deleted: %+v %v", ch, err)
	}
	ch, err = p.Event(pifu.EntityPerson, messages.OpDeleted, obj(t, recs[0].Person), nil)
	if err != nil || ch.Op != messages.OpDeleted || ch.Old == 0 || ch.Content != 0 {
		t.Errorf("pupil deleted: %+v %v", ch, err)
	}
}

func TestIndexEncoding(t *testing.T) {
	ix := projection.NewIndex()
	for _, r := range family() {
		ix.Add(r)
	}
	b, err := ix.Build().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var y projection.Index
	if err := y.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"mother", "teacher", "pupil", "5a", "5a-parents"} {
		if y.GuardianPerson(sid(id)) != ix.GuardianPerson(sid(id)) || y.GuardianGroup(sid(id)) != ix.GuardianGroup(sid(id)) {
			t.Errorf("%s answers differently after encoding", id)
		}
	}
	for i := range b {
		if err := new(projection.Index).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("cut at %d of %d bytes: decoded", i, len(b))
		}
	}
}
