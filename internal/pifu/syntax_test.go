package pifu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const head = `<?xml version="1.0" encoding="UTF-8"?>
<enterprise xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1">
<properties lang="nb"><datasource>vfs@x.no</datasource><type>full</type><datetime>2025-09-01</datetime></properties>
`

func personDoc(fn string) string {
	return head + `<person><sourcedid><source>vfs@x.no</source><id>P-1</id></sourcedid>` +
		`<name><fn>` + fn + `</fn><n><family>F</family><given>G</given></n></name></person>
</enterprise>
`
}

func TestCDATAEntitiesCommentsPIs(t *testing.T) {
	doc := head + `<!-- a comment with <person> inside --><?app do something?>
<person  recstatus = '2' >
  <sourcedid sourcedidtype="New"><source>vfs@x.no</source><id >  P&#45;1&#x30;  </id ></sourcedid>
  <userid useridtype="personNIN">01010100001</userid>
  <name><fn><![CDATA[A & <B>]]> &amp; &#248;&#xE6; &lt;&gt;&quot;&apos;</fn><!-- c --><n><family>Æ<!-- split -->ser</family><given>
  G</given></n></name>
  <extension><x:custom xmlns:x="urn:x" type="shoeSize">4<![CDATA[2]]><inner>!</inner></x:custom></extension>
</person>
</enterprise>`
	recs := mustDecode(t, []byte(doc))
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	p := recs[0].Person
	if p.SourcedID.ID != "P-10" || p.RecStatus != "2" {
		t.Errorf("sourcedid %+v recstatus %q", p.SourcedID, p.RecStatus)
	}
	if want := `A & <B> & øæ <>"'`; p.Name.Formatted != want {
		t.Errorf("fn = %q, want %q", p.Name.Formatted, want)
	}
	if p.Name.Family != "Æser" || p.Name.Given != "G" {
		t.Errorf("name = %+v", p.Name)
	}
	if p.UserIDs[0].Value != "01010100001" {
		t.Errorf("NIN = %q (leading zeros must stay)", p.UserIDs[0].Value)
	}
	if want := []Extension{{Name: "custom", Type: "shoeSize", Value: "42 !"}}; fmt.Sprint(p.Extensions) != fmt.Sprint(want) {
		t.Errorf("extensions = %+v, want %+v", p.Extensions, want)
	}
}

func TestMillionCharacterText(t *testing.T) {
	long := strings.Repeat("æ", 500_000) + strings.Repeat("b", 500_000) // a million characters, 1.5 MB
	for _, r := range []struct {
		name string
		r    func(string) io.Reader
	}{
		{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
		{"small reads", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
	} {
		recs, _, err := decodeAll(t, r.r(personDoc(long)), Config{BufferSize: 4096})
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		if got := recs[0].Person.Name.Formatted; got != long {
			t.Errorf("%s: fn has %d bytes, want %d", r.name, len(got), len(long))
		}
	}
	// Beyond the limit it is a SyntaxError that names the limit.
	_, _, err := decodeAll(t, strings.NewReader(personDoc(long)), Config{MaxTokenBytes: 1 << 20})
	if !isSyntax(err) || !strings.Contains(err.Error(), "limit of 1048576 bytes") {
		t.Errorf("over the limit: err = %v", err)
	}
	// The default limit is 16 MiB.
	huge := strings.Repeat("x", DefaultMaxTokenBytes+10)
	_, _, err = decodeAll(t, strings.NewReader(personDoc(huge)), Config{})
	if !isSyntax(err) || !strings.Contains(err.Error(), "limit of 16777216 bytes") {
		t.Errorf("over the default limit: err = %v", err)
	}
}

func TestTruncated(t *testing.T) {
	doc := readFile(t, "example-full.xml")
	end := bytes.LastIndex(doc, []byte("</enterprise>"))
	for cut := 0; cut < end+len("</enterprise")+1; cut += 7 {
		_, _, err := decodeAll(t, bytes.NewReader(doc[:cut]), Config{BufferSize: 256})
		if !isSyntax(err) {
			t.Fatalf("cut at %d: err = %v, want a SyntaxError", cut, err)
		}
	}
	// The error says where the document stopped and what was open.
	cut := bytes.Index(doc, []byte("<!-- teacher -->"))
	_, _, err := decodeAll(t, bytes.NewReader(doc[:cut]), Config{})
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 29 || se.Column != 3 || !strings.Contains(se.Msg, "<enterprise> is not closed") {
		t.Errorf("err = %v, want line 29, column 3, <enterprise> not closed", err)
	}
	// Cut inside a tag.
	cut = bytes.Index(doc, []byte(`useridtype="studentID"`)) + 5
	_, _, err = decodeAll(t, bytes.NewReader(doc[:cut]), Config{})
	if !errors.As(err, &se) || se.Line != 14 || se.Column != 5 || !strings.Contains(se.Msg, "end of document in a start tag") {
		t.Errorf("err = %v, want line 14, column 5, in a start tag", err)
	}
}

func TestMalformed(t *testing.T) {
	cases := []struct {
		name, doc string
		line, col int
		msg       string
	}{
		{"mismatched", head + "<person><sourcedid></person>", 4, 20, "<sourcedid> closed by </person>"},
		{"bad entity", head + "<person>&nbsp;</person>", 4, 9, "unknown entity &nbsp;"},
		{"bad char ref", head + "<person>&#0;</person>", 4, 9, "unknown entity &#0;"},
		{"no semicolon", head + "<person>a & b</person>", 4, 11, "entity reference without ';'"},
		{"unquoted", head + "<person recstatus=3>", 4, 19, "not quoted"},
		{"no value", head + "<person recstatus>", 4, 18, "has no value"},
		{"bad name", head + "<1person>", 4, 2, "invalid character"},
		{"text after root", head + "</enterprise>x", 4, 14, "text outside the root element"},
		{"element after root", head + "</enterprise><enterprise>", 4, 14, "after the end of the root element"},
		{"wrong root", "<persons/>", 1, 1, "root element is <persons>"},
		{"empty", "  ", 1, 3, "the document is empty"},
		{"stray end", "</enterprise>", 1, 1, "without a start tag"},
		{"utf16", "\xff\xfe<\x00", 1, 1, "UTF-16"},
		{"encoding", `<?xml version="1.0" encoding="EBCDIC"?><enterprise/>`, 1, 1, `unsupported encoding "EBCDIC"`},
		{"bad utf8", head + "<person>\xff</person>", 4, 9, "invalid UTF-8"},
		{"lt in attr", head + `<person recstatus="<">`, 4, 19, "< in the value"},
		{"unknown markup", head + "<!ELEMENT x>", 4, 1, "unsupported markup"},
		{"deep", head + strings.Repeat("<a>", 300), 4, 1 + 3*255, "nested deeper than 256"},
	}
	for _, c := range cases {
		_, _, err := decodeAll(t, strings.NewReader(c.doc), Config{})
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a SyntaxError", c.name, err)
			continue
		}
		if se.Line != c.line || se.Column != c.col || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("%s: got %q, want line %d, column %d: ...%s...", c.name, se.Error(), c.line, c.col, c.msg)
		}
	}
}

func TestReadErrorIsNotSyntax(t *testing.T) {
	boom := errors.New("connection reset")
	doc := readFile(t, "example-full.xml")
	r := io.MultiReader(bytes.NewReader(doc[:3000]), iotest.ErrReader(boom))
	_, _, err := decodeAll(t, r, Config{BufferSize: 1024})
	if !errors.Is(err, boom) || isSyntax(err) {
		t.Errorf("err = %v, want the read error", err)
	}
}

// The decoder is sticky: after an error, the same error.
func TestErrorIsSticky(t *testing.T) {
	d := NewDecoder(strings.NewReader(head + "<person></group>"))
	_, err1 := d.Next()
	_, err2 := d.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("errors %v then %v", err1, err2)
	}
}

func TestUnknownGroupTypeKept(t *testing.T) {
	doc := head + `<group><sourcedid><source>s</source><id>G</id></sourcedid>
<grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="42">leirskole</typevalue></grouptype>
<description><short>Leir</short></description>
<relationship relation="1"><sourcedid><source>s</source><id>S</id></sourcedid><label>S</label></relationship>
<extension><pifu_future type="x">y</pifu_future><pifu_status type="activeInactive">aktiv</pifu_status></extension>
</group></enterprise>`
	g := mustDecode(t, []byte(doc))[0].Group
	if g.Types[0] != (GroupType{Scheme: "pifu-ims-go-grp", Value: "leirskole", Level: "42"}) {
		t.Errorf("types = %+v", g.Types)
	}
	want := []Extension{{Name: "pifu_future", Type: "x", Value: "y"}, {Name: "pifu_status", Type: "activeInactive", Value: "aktiv"}}
	if fmt.Sprint(g.Extensions) != fmt.Sprint(want) {
		t.Errorf("extensions = %+v", g.Extensions)
	}

	// Check names the unknown type once, as a finding, and reads on: a
	// second group of that type and the person after it are counted.
	second := strings.Replace(doc[len(head):], "<id>G</id>", "<id>G2</id>", 1)
	second = strings.TrimSuffix(second, "</enterprise>") +
		`<person><sourcedid><source>s</source><id>P</id></sourcedid><name><fn>A</fn><n><family>F</family><given>G</given></n></name></person></enterprise>`
	rep, err := Check(NewDecoder(strings.NewReader(doc[:len(doc)-len("</enterprise>")] + second)))
	if err != nil {
		t.Fatal(err)
	}
	var unknown []Finding
	for _, f := range rep.Findings {
		if f.Kind == FindingUnknownType {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) != 1 || unknown[0].Key != "s/G" || unknown[0].Line != 4 || !strings.Contains(unknown[0].Detail, "pifu-ims-go-grp/leirskole") {
		t.Errorf("unknown-type findings = %+v", unknown)
	}
	if rep.GroupTypes["leirskole"] != 2 || rep.Entities[EntityGroup] != 2 || rep.Entities[EntityPerson] != 1 {
		t.Errorf("counts: group types %v, entities %v", rep.GroupTypes, rep.Entities)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := NewDecoderConfig(strings.NewReader(""), Config{MaxTokenBytes: 10}); err == nil {
		t.Error("MaxTokenBytes 10 accepted")
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
