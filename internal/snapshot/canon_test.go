package snapshot

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// tricky are strings that exercise every escape json.Marshal makes.
var tricky = []string{
	"", "a", "Åse Ødegård", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr",
	"\b\f\x00\x01\x1f\x7f", "bad \xff utf-8 \xc3", "line\u2028para\u2029sep", "emoji 🚌 and 中文",
	"https://skole.example/?a=1&b=<2>", "trailing \xe2\x80",
}

// fill sets every field of v (a pointer) by reflection: strings from tricky,
// slices nil, empty or with one to three elements, pointers nil or set. With
// full, every string is non-empty, every slice has elements and every
// pointer is set, so no field is left out by omitempty.
func fill(r *rand.Rand, v reflect.Value, full bool) {
	switch v.Kind() {
	case reflect.String:
		s := tricky[r.IntN(len(tricky))]
		if full && s == "" {
			s = tricky[1+r.IntN(len(tricky)-1)]
		}
		v.SetString(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(r, v.Field(i), full)
		}
	case reflect.Pointer:
		if !full && r.IntN(3) == 0 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), full)
		v.Set(p)
	case reflect.Slice:
		n := 1 + r.IntN(3)
		if !full {
			switch r.IntN(4) {
			case 0:
				v.SetZero() // nil
				return
			case 1:
				n = 0 // empty, not nil
			}
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), full)
		}
		v.Set(s)
	default:
		panic("fill: a record type has a field of kind " + v.Kind().String() + ": teach fill and appendCanonical about it")
	}
}

func checkCanonical(t *testing.T, rec pifu.Record) {
	t.Helper()
	want, err := json.Marshal(rec.Object())
	if err != nil {
		t.Fatal(err)
	}
	got := appendCanonical(nil, rec)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendCanonical differs from json.Marshal\n got %s\nwant %s", got, want)
	}
	h := NewHasher()
	ch, obj, err := h.Content(rec)
	if err != nil || !bytes.Equal(obj, want) || ch != mustContentHash(t, rec) {
		t.Fatalf("Hasher.Content: %x %s %v, want %x %s", ch, obj, err, mustContentHash(t, rec), want)
	}
}

func mustContentHash(t *testing.T, rec pifu.Record) uint64 {
	t.Helper()
	c, err := ContentHash(rec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCanonicalMatchesMarshal holds the hand-written encoder to
// json.Marshal, the definition of the content hash and of the events'
// objects: every field of every record type set (a field the encoder does
// not know shows as a difference), and many random mixes of empty, nil and
// set fields (omitempty, null for a nil slice without omitempty).
func TestCanonicalMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	newRecs := []func() (pifu.Record, any){
		func() (pifu.Record, any) { g := new(pifu.Group); return pifu.Record{Group: g}, g },
		func() (pifu.Record, any) { p := new(pifu.Person); return pifu.Record{Person: p}, p },
		func() (pifu.Record, any) { m := new(pifu.Membership); return pifu.Record{Membership: m}, m },
	}
	for _, full := range []bool{true, false} {
		for i := range 3000 {
			rec, obj := newRecs[i%len(newRecs)]()
			fill(r, reflect.ValueOf(obj).Elem(), full)
			checkCanonical(t, rec)
		}
	}
	// Zero records: every omitempty field left out, grouptypes null.
	for _, nr := range newRecs {
		rec, _ := nr()
		checkCanonical(t, rec)
	}
	checkCanonical(t, pifu.Record{Group: &pifu.Group{Types: []pifu.GroupType{}}})
}

func BenchmarkContent(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	p := &pifu.Person{}
	fill(r, reflect.ValueOf(p).Elem(), true)
	recs := map[string]pifu.Record{
		"person-full": {Person: p},
		"person": {Person: &pifu.Person{SourcedID: pifu.SourcedID{Source: "Flyt Skole", ID: "p-1001"},
			UserIDs: []pifu.Typed{{Type: "personNIN", Value: "01010112345"}, {Type: "studentID", Value: "1001"}},
			Name:    pifu.Name{Formatted: "Åse Ødegård", Family: "Ødegård", Given: "Åse"},
			Email:   "ase@skole.example", Tel: []pifu.Typed{{Type: "3", Value: "+47 99 99 99 99"}}}},
		"membership": {Membership: &pifu.Membership{Group: pifu.SourcedID{Source: "Flyt Skole", ID: "class-5a"},
			Member: pifu.SourcedID{Source: "Flyt Skole", ID: "p-1001"}, IDType: "1", RoleType: "01", Status: "1",
			Timeframe: &pifu.Timeframe{Begin: "2025-08-15", End: "2026-06-20"}}},
	}
	for name, rec := range recs {
		b.Run(name+"/canonical", func(b *testing.B) {
			h := NewHasher()
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = h.Content(rec)
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				_ = enc.Encode(rec.Object())
			}
		})
	}
}

// WithIncomplete adds the marks to a membership's canonical JSON exactly as
// the encoder writes a membership that has them.
func TestWithIncompleteMatchesCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	marks := [][]string{
		pifu.Incompleteness(false, pifu.MemberPerson), pifu.Incompleteness(true, pifu.MemberGroup),
		pifu.Incompleteness(true, pifu.MemberMissing), pifu.Incompleteness(false, pifu.MemberMissing),
		pifu.Incompleteness(false, pifu.MemberGroup),
	}
	for i := range 500 {
		m := new(pifu.Membership)
		fill(r, reflect.ValueOf(m).Elem(), i%2 == 0)
		m.Incomplete = nil
		plain := appendCanonical(nil, pifu.Record{Membership: m})
		mk := marks[i%len(marks)]
		m.Incomplete = mk
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := WithIncomplete(nil, plain, mk); !bytes.Equal(got, want) {
			t.Fatalf("WithIncomplete\n got %s\nwant %s", got, want)
		}
	}
	if got := WithIncomplete(nil, []byte(`{"a":1}`), nil); string(got) != `{"a":1}` {
		t.Errorf("no marks: %s", got)
	}
}
