package publisher_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// withFindings is a generated document with memberships that are not whole
// added: one before every person and group (whole: the document is not
// ordered as PIFU lists it), one whose group is not in the document, one
// whose person is not, and one whose member is a group (idtype 2).
func withFindings(t *testing.T, doc []byte) []byte {
	t.Helper()
	src := regexp.MustCompile(`<datasource>([^<]+)</datasource>`).FindSubmatch(doc)
	if src == nil {
		t.Fatal("the generated document has no datasource")
	}
	ms := func(group, member, idtype, role string) string {
		return "<membership><sourcedid><source>" + string(src[1]) + "</source><id>" + group + "</id></sourcedid>\n" +
			"  <member><sourcedid><source>" + string(src[1]) + "</source><id>" + member + "</id></sourcedid><idtype>" + idtype +
			`</idtype><role roletype="` + role + `"><status>1</status></role></member>` + "\n</membership>\n"
	}
	first := bytes.Index(doc, []byte("<person>"))
	end := bytes.LastIndex(doc, []byte("</enterprise>"))
	if first < 0 || end < 0 {
		t.Fatal("the generated document has no person or no end")
	}
	var b bytes.Buffer
	b.Write(doc[:first])
	b.WriteString(ms("SKOLE-1", "elev-2", "1", "03"))
	b.Write(doc[first:end])
	b.WriteString(ms("GONE-GROUP", "elev-1", "1", "01"))
	b.WriteString(ms("SKOLE-1", "elev-gone", "1", "01"))
	b.WriteString(ms("SKOLE-1", "TRINN-1-1", "2", "01"))
	b.Write(doc[end:])
	return b.Bytes()
}

// withoutPerson is doc without the person whose (New) sourcedid id is id.
func withoutPerson(t *testing.T, doc []byte, id string) []byte {
	t.Helper()
	re := regexp.MustCompile(`<person>(?:[^<]|<[^/]|</[^p]|</p[^e])*?<id>` + regexp.QuoteMeta(id) + `</id></sourcedid>.*?</person>\n?`)
	loc := re.FindIndex(doc)
	if loc == nil {
		t.Fatalf("no person %s in the document", id)
	}
	return append(slices.Clip(doc[:loc[0]]), doc[loc[1]:]...)
}

// membershipsOf are the keys of the memberships of member (a sourcedid id)
// in doc, read by the decoder.
func membershipsOf(t *testing.T, doc []byte, member string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	d := pifu.NewDecoder(bytes.NewReader(doc))
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Membership != nil && rec.Membership.Member.ID == member {
			out[rec.Membership.Key()] = true
		}
	}
}

// incompleteOf is the "incomplete" of an event's object.
func incompleteOf(t *testing.T, obj []byte) []string {
	t.Helper()
	var m struct {
		Incomplete []string `json:"incomplete"`
	}
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	return m.Incomplete
}

// schemas validates event bodies against docs/schemas, each schema known
// by the URL events name it by, so nothing is fetched.
type schemas struct {
	c     *jsonschema.Compiler
	byURL map[string]*jsonschema.Schema
}

func newSchemas(t *testing.T) *schemas {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "schemas", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("schemas: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(messages.SchemaBase+filepath.Base(f), doc); err != nil {
			t.Fatal(err)
		}
	}
	return &schemas{c: c, byURL: map[string]*jsonschema.Schema{}}
}

// check validates the body of every message against its ce-dataschema.
func (s *schemas) check(t *testing.T, msgs []lmsMsg) {
	t.Helper()
	for _, m := range msgs {
		url := m.msg.Header.Get(messages.HeaderDataSchema)
		sch, ok := s.byURL[url]
		if !ok {
			var err error
			if sch, err = s.c.Compile(url); err != nil {
				t.Fatalf("schema %s: %v", url, err)
			}
			s.byURL[url] = sch
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(m.msg.Data))
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(doc); err != nil {
			t.Fatalf("%s at sequence %d: %v\nbody %s", m.subject, m.seq, err, m.msg.Data)
		}
	}
}

// TestFindingsAreCountedAndMarked publishes a generated document with
// memberships that are not whole, then the same without a person, then with
// the person back: the boundaries count the findings of the whole export,
// the memberships carry their marks, the person's memberships are updated
// with the mark and without it again, and the demo vendor's copy, built
// from the events, matches the checksum at every export.completed.
func TestFindingsAreCountedAndMarked(t *testing.T) {
	e := newEnv(t, "small")
	sch := newSchemas(t)
	var clean bytes.Buffer
	if _, err := e.muni.WriteExport(e.ctx, &clean, 0); err != nil {
		t.Fatal(err)
	}
	docA := withFindings(t, clean.Bytes())
	docB := withoutPerson(t, docA, "elev-1")
	ofElev1 := membershipsOf(t, docA, "elev-1")
	if len(ofElev1) < 3 || len(membershipsOf(t, docB, "elev-1")) != len(ofElev1) {
		t.Fatalf("elev-1 has %d memberships", len(ofElev1))
	}
	src := string(regexp.MustCompile(`<datasource>([^<]+)</datasource>`).FindSubmatch(docA)[1])
	key := func(group, member, role string) string {
		m := pifu.Membership{Group: pifu.SourcedID{Source: src, ID: group}, Member: pifu.SourcedID{Source: src, ID: member}, RoleType: role}
		return m.Key()
	}
	gone := key("GONE-GROUP", "elev-1", "01")

	type step struct {
		id       string
		doc      []byte
		findings map[string]int
		// marks are the incomplete of the membership events, by key;
		// every other membership event has none.
		marks map[string][]string
		// op is what every membership event is; updated ones name
		// "incomplete" in previous.
		op messages.Op
	}
	markedB := map[string][]string{gone: {"group", "person"}}
	for k := range ofElev1 {
		if k != gone {
			markedB[k] = []string{"person"}
		}
	}
	clearedC := map[string][]string{gone: {"group"}}
	for k := range ofElev1 {
		if k != gone {
			clearedC[k] = nil
		}
	}
	steps := []step{
		{id: "a", doc: docA, op: messages.OpCreated,
			findings: map[string]int{messages.FindingDanglingMembership: 2, messages.FindingGroupMember: 1},
			marks: map[string][]string{gone: {"group"}, key("SKOLE-1", "elev-gone", "01"): {"person"},
				key("SKOLE-1", "TRINN-1-1", "01"): {"group-member"}, key("SKOLE-1", "elev-2", "03"): nil}},
		{id: "b", doc: docB, op: messages.OpUpdated, marks: markedB,
			findings: map[string]int{messages.FindingDanglingMembership: 1 + len(ofElev1), messages.FindingGroupMember: 1}},
		{id: "c", doc: docA, op: messages.OpUpdated, marks: clearedC,
			findings: map[string]int{messages.FindingDanglingMembership: 2, messages.FindingGroupMember: 1}},
	}
	for _, s := range steps {
		from := lastSeq(t, e.bus.JS) + 1
		fe := e.put(s.id, s.doc)
		out := e.process(fe) // the vendor's copy matches export.completed
		if !maps.Equal(out.Findings, s.findings) {
			t.Errorf("export %s: outcome findings %v, want %v", s.id, out.Findings, s.findings)
		}
		msgs := readLMS(t, e.bus.JS, from)
		sch.check(t, msgs)
		started, completed, events := changes(t, msgs, fe.ExportID)
		if !maps.Equal(started.Findings, s.findings) || !maps.Equal(completed.Findings, s.findings) {
			t.Errorf("export %s: findings %v and %v on the boundaries, want %v", s.id, started.Findings, completed.Findings, s.findings)
		}
		seen := map[string]bool{}
		for _, ev := range events {
			if ev.Entity != pifu.EntityMembership {
				continue
			}
			want, listed := s.marks[ev.Key]
			if got := incompleteOf(t, ev.Object); !slices.Equal(got, want) {
				t.Errorf("export %s: %s membership %s: incomplete %q, want %q", s.id, ev.Op, ev.Key, got, want)
			}
			if s.op == messages.OpCreated {
				if listed {
					seen[ev.Key] = true
				}
				continue
			}
			seen[ev.Key] = true
			if !listed || ev.Op != s.op || !bytes.Contains(ev.Previous, []byte(`"incomplete":`)) {
				t.Errorf("export %s: %s membership %s, previous %s", s.id, ev.Op, ev.Key, ev.Previous)
			}
		}
		if len(seen) != len(s.marks) {
			t.Errorf("export %s: %d of the %d memberships expected had an event", s.id, len(seen), len(s.marks))
		}
	}
}

// The generated documents are whole: no boundary carries findings and no
// membership a mark, on a first export and a changed generation.
func TestCleanExportsHaveNoFindings(t *testing.T) {
	e := newEnv(t, "small")
	for gen := range uint64(2) {
		from := lastSeq(t, e.bus.JS) + 1
		fe, _ := e.export(gen)
		if out := e.process(fe); out.Findings != nil {
			t.Errorf("generation %d: findings %v", gen, out.Findings)
		}
		memberships := 0
		for _, m := range readLMS(t, e.bus.JS, from) {
			switch {
			case m.subject.IsBoundary():
				if bytes.Contains(m.msg.Data, []byte(`"findings"`)) {
					t.Errorf("generation %d: %s carries findings: %s", gen, m.msg.Subject, m.msg.Data)
				}
			case m.subject.Entity == pifu.EntityMembership:
				memberships++
				if bytes.Contains(m.msg.Data, []byte(`"incomplete"`)) {
					t.Errorf("generation %d: a membership is marked: %s", gen, m.msg.Data)
				}
			}
		}
		if memberships == 0 {
			t.Errorf("generation %d: no membership events", gen)
		}
	}
}
