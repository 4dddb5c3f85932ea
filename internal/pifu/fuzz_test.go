package pifu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// FuzzDecoder feeds arbitrary bytes to the decoder (and to Check): it must
// end with io.EOF or a *SyntaxError, never panic or loop, and what it
// returns must encode as JSON. The seed corpus is in
// testdata/fuzz/FuzzDecoder; run
//
//	go test -run XXX -fuzz FuzzDecoder -fuzztime 60s -fuzzminimizetime 2s ./internal/pifu/
//
// With the default minimize time (60s) a short run can spend all its time
// minimizing one new input grown from the 64 KB udir example, and reports a
// dozen executions.
func FuzzDecoder(f *testing.F) {
	for _, name := range []string{"example-full.xml", "example-delta.xml", "udir-example-full.xml"} {
		f.Add(readFile(f, name))
	}
	f.Add([]byte(personDoc(`<![CDATA[x]]>&amp;&#xE6;`)))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><enterprise><person><name><fn>` + "\xe6" + `</fn></name></person></enterprise>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("FuzzDecoder: no result after 10s on a %d-byte input", len(doc)))
			}
		}()
		// A small buffer and token limit so that growth and limits are
		// exercised too.
		d, err := NewDecoderConfig(bytes.NewReader(doc), Config{BufferSize: 32, MaxTokenBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; ; n++ {
			if n > len(doc) {
				t.Fatalf("%d records from %d bytes", n, len(doc))
			}
			rec, err := d.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var se *SyntaxError
				if !errors.As(err, &se) || se.Line < 1 || se.Column < 1 {
					t.Fatalf("error %v (%T) is not a SyntaxError with a position", err, err)
				}
				if _, err2 := d.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				break
			}
			if _, err := json.Marshal(rec.Object()); err != nil {
				t.Fatalf("record does not encode: %v", err)
			}
			_ = rec.Key()
		}
		rep, err := Check(NewDecoder(bytes.NewReader(doc)))
		if err == nil {
			if _, err := json.Marshal(rep); err != nil {
				t.Fatalf("report does not encode: %v", err)
			}
		}
	})
}

func TestCheckUdirExample(t *testing.T) {
	rep, err := Check(NewDecoder(bytes.NewReader(readFile(t, "udir-example-full.xml"))))
	if err != nil {
		t.Fatal(err)
	}
	var dangling []Finding
	for _, f := range rep.Findings {
		if f.Kind == FindingDangling {
			dangling = append(dangling, f)
		}
	}
	// The official example's memberships point at two groups it does not
	// hold: global_ID_gr_Astr001_Måneflekken07 (the one PIFU.md names) and
	// global_ID_fag_Astr001; two roles each.
	count := map[string]int{}
	for _, f := range dangling {
		if f.Line == 0 || f.Column == 0 {
			t.Errorf("finding without position: %+v", f)
		}
		count[strings.TrimSuffix(strings.TrimPrefix(f.Detail, `refers to group "mitt-sas@måne.kommune.no `), `", which is not in the document`)]++
	}
	want := map[string]int{"global_ID_gr_Astr001_Måneflekken07": 2, "global_ID_fag_Astr001": 2}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("dangling groups = %v, want %v", count, want)
	}
	if rep.Entities[EntityPerson] != 5 || rep.Entities[EntityOrg] != 2 || rep.GroupTypes["skole"] != 1 || rep.Roles["01"] == 0 {
		t.Errorf("counts: %+v %+v %+v", rep.Entities, rep.GroupTypes, rep.Roles)
	}
	if rep.Properties.Datasource != "mitt-sas@måne.kommune.no" {
		t.Errorf("properties = %+v", rep.Properties)
	}
}

func TestCheckExampleFullIsClean(t *testing.T) {
	rep, err := Check(NewDecoder(bytes.NewReader(readFile(t, "example-full.xml"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("findings in a clean file: %+v", rep.Findings)
	}
	want := map[Entity]int{EntityPerson: 3, EntityOrg: 2, EntityGroup: 2, EntityMembership: 6}
	for e, n := range want {
		if rep.Entities[e] != n {
			t.Errorf("%s: %d, want %d", e, rep.Entities[e], n)
		}
	}
	if rep.Roles["01"] != 3 || rep.Roles["02"] != 2 || rep.Roles["06"] != 1 || rep.GroupTypes["basisgruppe"] != 1 {
		t.Errorf("roles %v, group types %v", rep.Roles, rep.GroupTypes)
	}
}

func TestCheckFindings(t *testing.T) {
	doc := head + `
<person><sourcedid><source>s</source><id>P1</id></sourcedid><name><fn>A</fn><n><family>F</family><given>G</given></n></name>
  <extension><pifu_hasContactPerson type="guardian"><sourcedid><source>s</source><id>GONE</id></sourcedid></pifu_hasContactPerson></extension></person>
<person><sourcedid><source>s</source><id>P1</id></sourcedid><name><fn>B</fn><n><family>F</family><given>G</given></n></name></person>
<person><sourcedid><source>s</source><id>P2</id></sourcedid></person>
<person><name><fn>C</fn></name></person>
<group><sourcedid><source>s</source><id>G1</id></sourcedid><description><short>x</short></description>
  <relationship relation="1"><sourcedid><source>s</source><id>NOPARENT</id></sourcedid><label>x</label></relationship></group>
<group><sourcedid><source>s</source><id>G2</id></sourcedid><grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="1">basisgruppe</typevalue></grouptype>
  <relationship relation="1"><sourcedid><source>s</source><id>G2</id></sourcedid><label>x</label></relationship></group>
<membership><sourcedid><source>s</source><id>G2</id></sourcedid>
  <member><sourcedid><source>s</source><id>P1</id></sourcedid><idtype>1</idtype><role roletype="01"><status>1</status></role><role roletype="01"><status>1</status></role><role><status>1</status></role></member>
  <member><sourcedid><source>s</source><id>NOBODY</id></sourcedid><idtype>1</idtype><role roletype="02"><status>1</status></role></member>
</membership>
</enterprise>`
	rep, err := Check(NewDecoder(strings.NewReader(doc)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, string(f.Kind)+": "+f.Detail)
	}
	want := []string{
		"duplicate-key: person s/P1 appears more than once",
		"missing-field: person has no name (name/fn)",
		"missing-field: person has no sourcedid",
		"missing-field: person's name lacks n/family or n/given",
		"missing-field: group has no grouptype",
		"missing-field: group has no description/short",
		"duplicate-key: membership s/G2|s/P1|01 appears more than once",
		"missing-field: role has no roletype",
		`dangling-reference: refers to group "s NOPARENT", which is not in the document`,
		`dangling-reference: refers to person "s GONE", which is not in the document`,
		`dangling-reference: refers to person "s NOBODY", which is not in the document`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.FindingsByKind[FindingDangling] != 3 || rep.Records != 10 {
		t.Errorf("by kind %v, records %d", rep.FindingsByKind, rep.Records)
	}
}

func TestCheckReturnsSyntaxError(t *testing.T) {
	doc := readFile(t, "example-full.xml")
	rep, err := Check(NewDecoder(bytes.NewReader(doc[:len(doc)/2])))
	if !isSyntax(err) || rep.Records == 0 {
		t.Errorf("err = %v, %d records", err, rep.Records)
	}
}
