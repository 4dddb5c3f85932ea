package snapshot_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

type sliceReader struct{ recs []pifu.Record }

func (r *sliceReader) Next() (pifu.Record, error) {
	if len(r.recs) == 0 {
		return pifu.Record{}, io.EOF
	}
	rec := r.recs[0]
	r.recs = r.recs[1:]
	return rec, nil
}

func records(n int) []pifu.Record {
	var out []pifu.Record
	out = append(out, pifu.Record{Group: &pifu.Group{
		SourcedID: pifu.SourcedID{Source: "kommune", ID: "owner"},
		Types:     []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "skoleeier"}},
		Short:     "Kommune",
	}})
	for i := range n {
		out = append(out, pifu.Record{Person: &pifu.Person{
			SourcedID: pifu.SourcedID{Source: "flyt", ID: fmt.Sprintf("p%d", i)},
			Name:      pifu.Name{Formatted: fmt.Sprintf("P %d", i), Family: "P", Given: fmt.Sprint(i)},
		}})
		out = append(out, pifu.Record{Membership: &pifu.Membership{
			Group:    pifu.SourcedID{Source: "kommune", ID: "owner"},
			Member:   pifu.SourcedID{Source: "flyt", ID: fmt.Sprintf("p%d", i)},
			RoleType: "01", Status: "1",
		}})
	}
	return out
}

func build(t *testing.T, recs []pifu.Record) *snapshot.Snapshot {
	t.Helper()
	s, dups, err := snapshot.FromRecords("t1", "e1", &sliceReader{recs: recs})
	if err != nil || dups != 0 {
		t.Fatalf("FromRecords: %v, %d duplicates", err, dups)
	}
	return s
}

func TestChecksumMatchesRecords(t *testing.T) {
	recs := records(50)
	s := build(t, recs)
	// Computed by hand from the documented definition, in reverse order.
	var want uint64
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		kh := xxhash.Sum64String(string(r.Entity()) + "\x00" + r.Key())
		b, err := json.Marshal(r.Object())
		if err != nil {
			t.Fatal(err)
		}
		var pair [16]byte
		for j := range 8 {
			pair[j] = byte(kh >> (8 * j))
			pair[8+j] = byte(xxhash.Sum64(b) >> (8 * j))
		}
		want += xxhash.Sum64(pair[:])
	}
	if uint64(s.Checksum()) != want {
		t.Fatalf("checksum %s, want %016x", s.Checksum(), want)
	}
	if s.Len() != len(recs) || s.Count(pifu.EntityPerson) != 50 || s.Count(pifu.EntityMembership) != 50 || s.Count(pifu.EntityOrg) != 1 {
		t.Fatalf("counts: len %d person %d membership %d org %d", s.Len(), s.Count(pifu.EntityPerson),
			s.Count(pifu.EntityMembership), s.Count(pifu.EntityOrg))
	}
	// A changed record changes the checksum.
	recs[3].Person.Name.Given = "changed"
	if s2 := build(t, recs); s2.Checksum() == s.Checksum() {
		t.Fatal("a changed record left the checksum unchanged")
	}
}

func TestFromRecordsKeepsFirstDuplicate(t *testing.T) {
	recs := records(3)
	dup := *recs[1].Person
	dup.Name.Given = "second"
	recs = append(recs, pifu.Record{Person: &dup})
	s, dups, err := snapshot.FromRecords("t1", "e1", &sliceReader{recs: recs})
	if err != nil || dups != 1 {
		t.Fatalf("FromRecords: %v, %d duplicates, want 1", err, dups)
	}
	if want := build(t, recs[:len(recs)-1]); s.Checksum() != want.Checksum() {
		t.Fatal("the duplicate's content replaced the first record's")
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s := build(t, records(1000))
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if max := 128 + 16*s.Len(); buf.Len() > max {
		t.Fatalf("encoded %d bytes for %d records, want at most %d", buf.Len(), s.Len(), max)
	}
	got, err := snapshot.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Tenant() != "t1" || got.ExportID() != "e1" || got.Checksum() != s.Checksum() || got.Len() != s.Len() {
		t.Fatalf("decoded %s/%s %s %d, want t1/e1 %s %d", got.Tenant(), got.ExportID(), got.Checksum(), got.Len(),
			s.Checksum(), s.Len())
	}
	for i := range snapshot.NumEntities {
		a, b := s.Entries(i), got.Entries(i)
		if len(a) != len(b) {
			t.Fatalf("entity %d: %d entries, want %d", i, len(b), len(a))
		}
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("entity %d entry %d: %+v, want %+v", i, j, b[j], a[j])
			}
		}
	}
	// An empty snapshot round-trips too.
	empty, err := snapshot.NewBuilder("t2", "e0").Build()
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := empty.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if got, err := snapshot.Decode(&buf); err != nil || got.Len() != 0 || got.Tenant() != "t2" {
		t.Fatalf("empty snapshot: %v, %v", got, err)
	}
}

func TestDecodeRefusesBadInput(t *testing.T) {
	s := build(t, records(20))
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x40
		return b
	}
	// The last two records (before the 16-byte trailer) swapped.
	swapped := bytes.Clone(good)
	last, prev := swapped[len(good)-32:len(good)-16], bytes.Clone(swapped[len(good)-48:len(good)-32])
	copy(swapped[len(good)-48:], last)
	copy(swapped[len(good)-32:], prev)
	versioned := bytes.Clone(good)
	versioned[8] = 9
	cases := []struct {
		name string
		in   []byte
		want []string
	}{
		{"empty", nil, []string{"magic", "unexpected EOF"}},
		{"not a snapshot", []byte("<enterprise>...</enterprise>"), []string{"magic", "not a skolebuss snapshot"}},
		{"truncated in records", good[:len(good)/2], []string{"person record", "unexpected EOF"}},
		{"truncated trailer", good[:len(good)-3], []string{"file hash", "unexpected EOF"}},
		{"flipped record byte", flip(len(good) - 40), []string{"checksum"}},
		{"flipped export id", flip(14), []string{"file hash"}},
		{"records out of order", swapped, []string{"record", "keys out of order", fmt.Sprintf("at byte %d", len(good)-16)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := snapshot.Decode(bytes.NewReader(c.in))
			if !errors.Is(err, snapshot.ErrCorrupt) {
				t.Fatalf("error %v, want ErrCorrupt", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := snapshot.Decode(bytes.NewReader(versioned)); !errors.Is(err, snapshot.ErrVersion) {
		t.Fatalf("unknown version: %v, want ErrVersion", err)
	}
}

func TestLookup(t *testing.T) {
	recs := records(100)
	s := build(t, recs)
	i, _ := snapshot.EntityIndex(pifu.EntityPerson)
	for _, r := range recs {
		if r.Person == nil {
			continue
		}
		ch, err := snapshot.ContentHash(r)
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok := s.Lookup(i, snapshot.KeyHash(r.Entity(), r.Key()))
		if !ok || got != ch {
			t.Fatalf("lookup %s: %v %016x, want %016x", r.Key(), ok, got, ch)
		}
	}
	if _, _, ok := s.Lookup(i, snapshot.KeyHash(pifu.EntityPerson, "flyt/nobody")); ok {
		t.Fatal("found a key that is not there")
	}
}

func TestLookupLarge(t *testing.T) {
	b := snapshot.NewBuilder("t", "e")
	var keys []uint64
	for i := range 200_000 {
		kh := snapshot.KeyHash(pifu.EntityMembership, fmt.Sprint(i))
		keys = append(keys, kh)
		b.Add(3, kh, uint64(i))
	}
	// A cluster of close keys, to skew the distribution.
	for i := range 1000 {
		keys = append(keys, uint64(1<<40+i))
		b.Add(3, uint64(1<<40+i), uint64(i))
	}
	s, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	es := s.Entries(3)
	for _, k := range keys {
		pos, _, ok := s.Lookup(3, k)
		if !ok || es[pos].Key != k {
			t.Fatalf("key %x: pos %d ok %v", k, pos, ok)
		}
		if _, _, ok := s.Lookup(3, k+1); ok && !slices.ContainsFunc(es, func(e snapshot.Entry) bool { return e.Key == k+1 }) {
			t.Fatalf("found absent key %x", k+1)
		}
	}
	if _, _, ok := s.Lookup(3, 0); ok {
		t.Fatal("found key 0")
	}
	if _, _, ok := s.Lookup(3, ^uint64(0)); ok {
		t.Fatal("found the largest key")
	}
}

func BenchmarkLookup800k(b *testing.B) {
	bl := snapshot.NewBuilder("t", "e")
	const n = 800_000
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = snapshot.KeyHash(pifu.EntityMembership, fmt.Sprint(i))
		bl.Add(3, keys[i], 0)
	}
	s, _ := bl.Build()
	i := 0
	for b.Loop() {
		if _, _, ok := s.Lookup(3, keys[i%n]); !ok {
			b.Fatal("missing")
		}
		i += 7919
	}
}

func BenchmarkDecode800k(b *testing.B) {
	bl := snapshot.NewBuilder("t", "e")
	for i := range 800_000 {
		bl.Add(3, snapshot.KeyHash(pifu.EntityMembership, fmt.Sprint(i)), uint64(i))
	}
	s, _ := bl.Build()
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := snapshot.Decode(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
