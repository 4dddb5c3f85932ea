package pifu

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden JSON files in testdata/")

// The records' JSON is the "object" of the change events: a field renamed,
// dropped or re-typed here is a breaking change for every vendor. The
// golden files pin it, byte for byte, for both example documents; change
// them (go test -run TestRecordJSONIsStable -update) only together with the
// event schemas.
func TestRecordJSONIsStable(t *testing.T) {
	for _, name := range []string{"example-full.xml", "udir-example-full.xml"} {
		recs := mustDecode(t, readFile(t, name))
		var sb strings.Builder
		for _, r := range recs {
			b, err := json.Marshal(r.Object())
			if err != nil {
				t.Fatal(err)
			}
			sb.WriteString(string(r.Entity()) + "\t" + r.Key() + "\t" + string(b) + "\n")

			// Decoding the JSON gives the record back: nothing is
			// encoded that cannot be read.
			back := reflect.New(reflect.TypeOf(r.Object()).Elem())
			if err := json.Unmarshal(b, back.Interface()); err != nil {
				t.Fatalf("%s: %s %s does not decode: %v", name, r.Entity(), r.Key(), err)
			}
			if !reflect.DeepEqual(back.Interface(), r.Object()) {
				t.Errorf("%s: %s %s changes through JSON:\n%+v\n%+v", name, r.Entity(), r.Key(), back.Interface(), r.Object())
			}
		}
		golden := filepath.Join("testdata", strings.TrimSuffix(name, ".xml")+".records.golden")
		if *updateGolden {
			if err := os.WriteFile(golden, []byte(sb.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got := sb.String(); got != string(want) {
			gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("%s: line %d of the records' JSON differs from %s:\n got %s\nwant %s", name, i+1, golden, gl[i], wl[i])
				}
			}
			t.Fatalf("%s: %d lines of JSON, %s has %d", name, len(gl), golden, len(wl))
		}
		// Nothing in the JSON keys a record by the national id number.
		for _, r := range recs {
			if r.Person == nil {
				continue
			}
			for _, u := range r.Person.UserIDs {
				if u.Type == "personNIN" && strings.Contains(r.Key(), u.Value) {
					t.Errorf("%s: person key %q holds the national id", name, r.Key())
				}
			}
		}
	}
	if bytes.Contains(readFile(t, "example-full.xml"), []byte("personNIN")) == false {
		t.Fatal("example-full.xml has no personNIN: the key check proves nothing")
	}
}
