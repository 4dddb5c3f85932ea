package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// generatedObjects are the records of two generations of a small generated
// municipality, each as the object of its change events (json.Marshal of
// the record, as the publisher writes it), by entity, in document order.
func generatedObjects(t testing.TB, preset string) map[pifu.Entity][][]byte {
	t.Helper()
	sizes, err := rostergen.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{TenantID: "9b0f1e3a-0000-4000-8000-000000000001", Name: "Fjordvik kommune",
		Seed: 7, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	out := map[pifu.Entity][][]byte{}
	for _, gen := range []uint64{1, 2} {
		var doc bytes.Buffer
		if _, err := m.WriteExport(context.Background(), &doc, gen); err != nil {
			t.Fatal(err)
		}
		d := pifu.NewDecoder(&doc)
		for {
			r, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(r.Object())
			if err != nil {
				t.Fatal(err)
			}
			out[r.Entity()] = append(out[r.Entity()], b)
		}
	}
	return out
}

// sameRecord checks that fastRecord and fastOverlay, where they accept
// their input, give what encoding/json gives on it.
func sameRecord(t *testing.T, e pifu.Entity, object, previous []byte) (fastObject, fastPrevious bool) {
	t.Helper()
	var fast pifu.Record
	if fastObject = fastRecord(e, object, &fast); fastObject {
		slow, err := decodeRecordJSON(e, object)
		if err != nil {
			t.Fatalf("%s: fast reader took what encoding/json refuses (%v): %q", e, err, object)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: fast reader and encoding/json differ on %q:\n%#v\n%#v", e, object, fast, slow)
		}
	}
	if previous == nil {
		return fastObject, false
	}
	fastOld, ok := fastOverlay(e, object, previous)
	if ok {
		slowOld, err := overlayJSON(e, object, previous)
		if err != nil {
			t.Fatalf("%s: fast overlay took what encoding/json refuses (%v): %q %q", e, err, object, previous)
		}
		if !reflect.DeepEqual(fastOld, slowOld) {
			t.Fatalf("%s: fast overlay and encoding/json differ on %q %q:\n%#v\n%#v", e, object, previous, fastOld, slowOld)
		}
	}
	return fastObject, ok
}

// FuzzFastRecord compares the reflection-free record reader with
// encoding/json on the same bytes, seeded with generated records and the
// previous of updates between them.
func FuzzFastRecord(f *testing.F) {
	objs := generatedObjects(f, "tiny")
	for i, e := range pifu.Entities {
		list := objs[e]
		for j, o := range list {
			var prev []byte
			if j > 0 && j%4 == 0 {
				p, err := previousOf(list[j-1], o)
				if err != nil {
					f.Fatal(err)
				}
				prev = p
			}
			f.Add(uint8(i), o, prev)
		}
	}
	f.Add(uint8(2), []byte(` { "sourcedid" : {"source":"a\u00e6","id":"b"} , "name":{"fn":"\"x\"","family":"","given":""}} `),
		[]byte(`{"email":null,"gender":"1"}`))
	f.Add(uint8(2), []byte(`{"sourcedid":{"source":"a","id":"b"},"Name":{"fn":"x"}}`), []byte(`{"bday":"x","bday":null}`))
	f.Add(uint8(1), []byte(`{"sourcedid":{"source":"a","id":"b"},"timeframe":{"begin":"1"},"timeframe":{"end":"2"}}`), []byte(nil))
	f.Add(uint8(3), []byte("{\"group\":{\"source\":\"\xff\",\"id\":\"b\"},\"incomplete\":[]}"), []byte(`{"incomplete":["group"]}`))
	f.Add(uint8(0), []byte(`{"grouptypes":null,"short":1}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, entity uint8, object, previous []byte) {
		sameRecord(t, pifu.Entities[int(entity)%len(pifu.Entities)], object, previous)
	})
}

// TestFastRecordReadsGenerated checks that every record the publisher
// writes for a generated municipality is read without encoding/json, the
// old record of an update too, and that the overlay gives the old record
// back.
func TestFastRecordReadsGenerated(t *testing.T) {
	objs := generatedObjects(t, "small")
	n := 0
	for _, e := range pifu.Entities {
		list := objs[e]
		if len(list) == 0 {
			t.Fatalf("no %s generated", e)
		}
		for j, o := range list {
			var prev []byte
			if j > 0 {
				p, err := previousOf(list[j-1], o)
				if err != nil {
					t.Fatal(err)
				}
				prev = p
			}
			fastObj, fastPrev := sameRecord(t, e, o, prev)
			if !fastObj || (prev != nil && !fastPrev) {
				t.Fatalf("%s not read fast (object %v, update %v): %s %s", e, fastObj, fastPrev, o, prev)
			}
			if prev != nil {
				old, err := overlay(e, o, prev)
				if err != nil {
					t.Fatal(err)
				}
				want, err := decodeRecordJSON(e, list[j-1])
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(old, want) {
					t.Fatalf("%s: the overlay of %s with %s is not the record before:\n%#v\n%#v", e, o, prev, old, want)
				}
			}
			n++
		}
	}
	t.Logf("%d records read fast", n)
}

// TestFastRecordRefuses checks that what the fast reader does not read the
// way encoding/json does is left to encoding/json.
func TestFastRecordRefuses(t *testing.T) {
	for _, s := range []string{
		`{"sourcedid":{"source":"a","id":"b"},"Short":"x"}`,                                       // name cased otherwise
		`{"sourcedid":{"source":"a","id":"b"},"unknown":1}`,                                       // unknown field
		`{"sourcedid":{"source":"a","id":"b"},"short":null}`,                                      // null
		`{"sourcedid":{"source":"a","id":"b"},"short":"x","short":"y"}`,                           // twice
		`{"sourcedid":{"source":"a","id":"b"},"timeframe":{"begin":"1"},"timeframe":{"end":"2"}}`, // twice, merged by encoding/json
		`{"sourcedid":{"source":"a","id":"b"},"short":1}`,                                         // wrong kind
		`{"sourcedid":{"source":"a","id":"b"},"short":"x"} x`,                                     // trailing data
		`{"sourcedid":{"source":"a","id":"b"},"short":"x",}`,                                      // bad JSON
		`null`,
	} {
		var rec pifu.Record
		if fastRecord(pifu.EntityGroup, []byte(s), &rec) {
			t.Errorf("read fast, want encoding/json: %s", s)
		}
	}
	var rec pifu.Record
	if !fastRecord(pifu.EntityGroup, []byte(`{"short":"a\"b\u00e6","grouptypes":[]}`), &rec) ||
		rec.Group.Short != "a\"bæ" || rec.Group.Types == nil {
		t.Errorf("escaped string or empty list: got %#v", rec.Group)
	}
}
