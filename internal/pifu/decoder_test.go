package pifu

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// readFile reads a file of the repository's testdata/.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeAll decodes every record of r with cfg.
func decodeAll(t testing.TB, r io.Reader, cfg Config) ([]Record, Properties, error) {
	t.Helper()
	d, err := NewDecoderConfig(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			return recs, d.Properties(), nil
		}
		if err != nil {
			return recs, d.Properties(), err
		}
		recs = append(recs, rec)
	}
}

func mustDecode(t testing.TB, doc []byte) []Record {
	t.Helper()
	recs, _, err := decodeAll(t, bytes.NewReader(doc), Config{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// jsonOf is the records' JSON, positions left out: what two documents with
// the same content must share.
func jsonOf(t testing.TB, recs []Record) string {
	t.Helper()
	var sb strings.Builder
	for _, r := range recs {
		b, err := json.Marshal(r.Object())
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(string(r.Entity()) + " " + string(b) + "\n")
	}
	return sb.String()
}

const src = "vfs@fjordvik.kommune.no"

func sid(id string) SourcedID { return SourcedID{Source: src, ID: id} }

func TestExampleFullRecords(t *testing.T) {
	recs, props, err := decodeAll(t, bytes.NewReader(readFile(t, "example-full.xml")), Config{})
	if err != nil {
		t.Fatal(err)
	}
	wantProps := Properties{Lang: "nb", Datasource: src, Targets: []string{"lms-export@example.no"}, Type: "full", Datetime: "2025-09-01T06:00:00"}
	if !reflect.DeepEqual(props, wantProps) {
		t.Errorf("properties = %+v, want %+v", props, wantProps)
	}
	var ents []string
	for _, r := range recs {
		ents = append(ents, string(r.Entity()))
	}
	wantEnts := "person person person org org group group membership membership membership membership membership membership"
	if got := strings.Join(ents, " "); got != wantEnts {
		t.Fatalf("entities = %s, want %s", got, wantEnts)
	}

	kari := &Person{
		SourcedID: sid("P-1001"),
		UserIDs: []Typed{
			{Type: "personNIN", Value: "01021599999"}, {Type: "studentID", Value: "880123"},
			{Type: "feideID", Value: "kari.elev@fjordvik.kommune.no"},
		},
		Name:     Name{Formatted: "Kari Elev Nilsen", Family: "Nilsen", Given: "Kari Elev"},
		Gender:   "1",
		Birthday: "2015-02-01",
		Email:    "kari.elev@skole.fjordvik.no",
		Status:   []Typed{{Type: "activeInactive", Value: "aktiv"}, {Type: "pupilStatus", Value: "heltid"}},
		Language: "nn",
		ContactPersons: []ContactLink{
			{Type: "guardian", Person: sid("P-3001")},
		},
	}
	if !reflect.DeepEqual(recs[0].Person, kari) {
		t.Errorf("person 0 =\n%+v\nwant\n%+v", recs[0].Person, kari)
	}
	if recs[0].Line != 11 || recs[0].Column != 3 {
		t.Errorf("person 0 at %d:%d, want 11:3", recs[0].Line, recs[0].Column)
	}
	if got := recs[0].Key(); got != "vfs@fjordvik.kommune.no/P-1001" {
		t.Errorf("key = %q", got)
	}
	ole := recs[1].Person
	if ole.Name.Family != "Lærer" || len(ole.Tel) != 1 || ole.Tel[0] != (Typed{Type: "3", Value: "+4791234567"}) ||
		!reflect.DeepEqual(ole.Emails, []Typed{{Type: "personEmailAtOrg", Value: "ole.laerer@fjordvik.kommune.no"}}) {
		t.Errorf("teacher = %+v", ole)
	}
	per := recs[2].Person
	if !reflect.DeepEqual(per.Emails, []Typed{{Type: "personEmailPrivate", Value: "per.nilsen@example.no", Priority: "1"}}) ||
		!reflect.DeepEqual(per.Phones, []Typed{{Type: "personMobilePrivate", Value: "+4799887766"}}) {
		t.Errorf("guardian = %+v", per)
	}

	school := recs[4].Group
	wantSchool := &Group{
		SourcedID:     sid("SCH-17"),
		Types:         []GroupType{{Scheme: "pifu-ims-go-org", Value: "skole", Level: "2"}},
		Short:         "Fjordvik skule",
		Relationships: []Relationship{{Relation: "1", Target: sid("ORG-4649"), Label: "Fjordvik kommune"}},
		IDs:           []ExtID{{Type: "organizationNumber", Value: "NO974000111", Scope: "enhetsregisteret", Unique: "1"}},
		Names:         []Typed{{Type: "name", Value: "Fjordvik skule"}},
		SchoolTypes:   []string{"barneskole"},
	}
	if !reflect.DeepEqual(school, wantSchool) {
		t.Errorf("school =\n%+v\nwant\n%+v", school, wantSchool)
	}
	if p, _ := recs[3].Group.Parent(); p != sid("ORG-4649") {
		t.Errorf("school owner's parent = %v, want itself", p)
	}
	class := recs[5].Group
	if class.Timeframe == nil || *class.Timeframe != (Timeframe{Begin: "2025-08-15", End: "2026-06-20", AdminPeriod: "2025/2026"}) ||
		class.Long != "Basisgruppe 5A" || class.Entity() != EntityGroup {
		t.Errorf("class = %+v", class)
	}
	mat := recs[6].Group
	if !reflect.DeepEqual(mat.IDs, []ExtID{{Type: "grepCodeShortForm", Value: "MAT0001", Scope: "grep - levende læreplaner", Unique: "0"}}) {
		t.Errorf("teaching group ids = %+v", mat.IDs)
	}

	type ms struct{ group, member, role, subrole, status, primary string }
	var got []ms
	for _, r := range recs[7:] {
		m := r.Membership
		if m.IDType != "1" {
			t.Errorf("idtype = %q", m.IDType)
		}
		got = append(got, ms{m.Group.ID, m.Member.ID, m.RoleType, m.Subrole, m.Status, m.Primary})
	}
	want := []ms{
		{"SCH-17", "P-1001", "01", "", "1", ""},
		{"SCH-17", "P-2001", "02", "", "1", "1"},
		{"GRP-5A-2025", "P-1001", "01", "", "1", ""},
		{"GRP-5A-2025", "P-2001", "06", "", "1", ""},
		{"GRP-MAT-5A-2025", "P-1001", "01", "", "1", ""},
		{"GRP-MAT-5A-2025", "P-2001", "02", "faglærer", "1", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("memberships =\n%v\nwant\n%v", got, want)
	}
	if tf := recs[9].Membership.Timeframe; tf == nil || *tf != (Timeframe{Begin: "2025-08-15", End: "2026-06-20"}) {
		t.Errorf("membership timeframe = %v", tf)
	}
	if k := recs[12].Key(); k != "vfs@fjordvik.kommune.no/GRP-MAT-5A-2025|vfs@fjordvik.kommune.no/P-2001|02" {
		t.Errorf("membership key = %q", k)
	}
}

func TestExampleDelta(t *testing.T) {
	recs, props, err := decodeAll(t, bytes.NewReader(readFile(t, "example-delta.xml")), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if props.Type != "delta" || len(recs) != 2 {
		t.Fatalf("type %q, %d records", props.Type, len(recs))
	}
	if recs[0].Person.RecStatus != "3" || recs[1].Membership.RecStatus != "3" || recs[1].Membership.Status != "0" {
		t.Errorf("recstatus not kept: %+v %+v", recs[0].Person, recs[1].Membership)
	}
}

func TestUdirExample(t *testing.T) {
	recs := mustDecode(t, readFile(t, "udir-example-full.xml"))
	janne := recs[0].Person
	if janne.SourcedID.ID != "global_ID_01235" || janne.SourcedID.Type != "New" {
		t.Errorf("key = %+v, want the New sourcedid", janne.SourcedID)
	}
	if len(janne.OtherIDs) != 1 || janne.OtherIDs[0].ID != "Måne_personid_1235" || janne.OtherIDs[0].Type != "Old" {
		t.Errorf("other ids = %+v", janne.OtherIDs)
	}
	if recs[0].Key() != "mitt-sas@m%C3%A5ne.kommune.no/global_ID_01235" {
		t.Errorf("record key = %q", recs[0].Key())
	}
	// The holiday address keeps its timeframe; the native tongues are kept
	// as extensions.
	var holiday *Address
	for i, a := range janne.Addresses {
		if a.Type == "personPostalAddressHoliday" {
			holiday = &janne.Addresses[i]
		}
	}
	if holiday == nil || holiday.Timeframe == nil || holiday.Timeframe.End != "2007-08-02" || holiday.Locality != "Stjernestad" {
		t.Errorf("holiday address = %+v", holiday)
	}
	wantExt := []Extension{{Name: "pifu_nativeTongue", Type: "ISO 639-2", Value: "smj"}, {Name: "pifu_nativeTongue", Type: "ISO 639-1", Value: "no"}}
	if !reflect.DeepEqual(janne.Extensions, wantExt) {
		t.Errorf("extensions = %+v", janne.Extensions)
	}
	if len(janne.ContactPersons) != 1 || janne.ContactPersons[0].Type != "nextOfKin" {
		t.Errorf("contact persons = %+v", janne.ContactPersons)
	}
	counts := map[Entity]int{}
	for _, r := range recs {
		counts[r.Entity()]++
	}
	if counts[EntityPerson] != 5 || counts[EntityOrg] != 2 {
		t.Errorf("counts = %v", counts)
	}
}

// Every way to spell the namespace reads alike: the example is in the 1.3
// namespace (pifu-ims_sas-v1); 1.1, 1.11 and 1.2 share pifu-ims_sas-1.1.
func TestNamespaceVariants(t *testing.T) {
	doc := string(readFile(t, "example-full.xml"))
	want := jsonOf(t, mustDecode(t, []byte(doc)))
	const v13 = `xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1"`
	tag := regexp.MustCompile(`<(/?)([a-zA-Z_])`)
	variants := map[string]string{
		"1.1/1.2": strings.Replace(doc, v13, `xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-1.1"`, 1),
		"none":    strings.Replace(doc, " "+v13, "", 1),
		"prefixed": strings.Replace(tag.ReplaceAllString(doc, "<${1}p:$2"), v13,
			`xmlns:p="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="x y"`, 1),
	}
	for name, v := range variants {
		if v == doc {
			t.Fatalf("%s: variant unchanged", name)
		}
		if got := jsonOf(t, mustDecode(t, []byte(v))); got != want {
			t.Errorf("%s: records differ:\n%s\nwant\n%s", name, got, want)
		}
	}
}

// toLatin1 writes a UTF-8 document as ISO-8859-1 bytes.
func toLatin1(t testing.TB, doc string) []byte {
	var out []byte
	for _, r := range doc {
		if r > 0xFF {
			t.Fatalf("%q has no Latin-1 form", r)
		}
		out = append(out, byte(r))
	}
	return out
}

func TestLatin1(t *testing.T) {
	for _, name := range []string{"example-full.xml", "udir-example-full.xml"} {
		doc := string(readFile(t, name))
		utf := mustDecode(t, []byte(doc))
		lat := toLatin1(t, strings.Replace(doc, `encoding="UTF-8"`, `encoding="ISO-8859-1"`, 1))
		if utf8.Valid(lat) {
			t.Fatalf("%s: the Latin-1 form is valid UTF-8: the test proves nothing", name)
		}
		got, _, err := decodeAll(t, iotest.HalfReader(bytes.NewReader(lat)), Config{BufferSize: 64})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if jsonOf(t, got) != jsonOf(t, utf) {
			t.Errorf("%s: Latin-1 records differ from UTF-8 ones", name)
		}
		for i := range got {
			if got[i].Line != utf[i].Line || got[i].Column != utf[i].Column {
				t.Errorf("%s: record %d at %d:%d, UTF-8 at %d:%d", name, i, got[i].Line, got[i].Column, utf[i].Line, utf[i].Column)
			}
		}
	}
	// Without the declaration the Latin-1 bytes are not UTF-8: an error.
	doc := toLatin1(t, `<enterprise><properties lang="nb"><datasource>måne</datasource></properties></enterprise>`)
	if _, _, err := decodeAll(t, bytes.NewReader(doc), Config{}); !isSyntax(err) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("undeclared Latin-1: err = %v", err)
	}
}

func isSyntax(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se) && se.Line > 0 && se.Column > 0
}

// Small buffers and one-byte reads split every token at every place; the
// records must not change.
func TestBufferBoundaries(t *testing.T) {
	for _, name := range []string{"example-full.xml", "udir-example-full.xml"} {
		doc := readFile(t, name)
		want := mustDecode(t, doc)
		for _, c := range []struct {
			name string
			r    io.Reader
			cfg  Config
		}{
			{"one byte reads", iotest.OneByteReader(bytes.NewReader(doc)), Config{}},
			{"16-byte buffer", bytes.NewReader(doc), Config{BufferSize: 16}},
			{"17-byte buffer, data errs", iotest.DataErrReader(iotest.HalfReader(bytes.NewReader(doc))), Config{BufferSize: 17}},
		} {
			got, _, err := decodeAll(t, c.r, c.cfg)
			if err != nil {
				t.Fatalf("%s, %s: %v", name, c.name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s, %s: records (or positions) differ", name, c.name)
			}
		}
	}
}
