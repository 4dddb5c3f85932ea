package snapshot_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// fuzzSnapshot builds a snapshot from fuzzed records: each 17 bytes of
// recs is an entity index, a key hash and a content hash.
func fuzzSnapshot(tenant, export string, recs []byte) (*snapshot.Snapshot, error) {
	b := snapshot.NewBuilder(tenant, export)
	for ; len(recs) >= 17; recs = recs[17:] {
		b.Add(int(recs[0])%snapshot.NumEntities, binary.LittleEndian.Uint64(recs[1:]), binary.LittleEndian.Uint64(recs[9:]))
	}
	return b.Build()
}

func encode(t *testing.T, s *snapshot.Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatalf("encode: %v", err)
	}
	return buf.Bytes()
}

// same reports whether two snapshots hold the same tenant, export, records
// and checksum.
func same(a, b *snapshot.Snapshot) bool {
	if a.Tenant() != b.Tenant() || a.ExportID() != b.ExportID() || a.Checksum() != b.Checksum() {
		return false
	}
	for i := range snapshot.NumEntities {
		if !slices.Equal(a.Entries(i), b.Entries(i)) {
			return false
		}
	}
	return true
}

func snapshotSeeds(f *testing.F) {
	f.Add("aa750693-e3ea-441b-93fe-6a71a8371afa", "exp-42", []byte{}, uint16(0), byte(0))
	var recs []byte
	for i := range 40 {
		recs = append(recs, byte(i%snapshot.NumEntities))
		recs = binary.LittleEndian.AppendUint64(recs, uint64(i)*0x9e3779b97f4a7c15)
		recs = binary.LittleEndian.AppendUint64(recs, uint64(i)*31)
	}
	f.Add("aa750693-e3ea-441b-93fe-6a71a8371afa", "export-2026-03-02", recs, uint16(100), byte(1))
	f.Add("t", "", recs[:17*3], uint16(9), byte(0x80))
	// An export id longer than Decode reads was written, then refused on
	// reading: the publisher would store a snapshot it cannot load.
	f.Add("aa750693-e3ea-441b-93fe-6a71a8371afa", strings.Repeat("x", 4097), recs[:17], uint16(3), byte(0))
}

// FuzzSnapshotRoundTrip: a snapshot built from any records encodes, and
// decodes to the same snapshot; a copy cut short or with one byte changed
// is refused with ErrCorrupt or ErrVersion, never taken for a snapshot.
func FuzzSnapshotRoundTrip(f *testing.F) {
	snapshotSeeds(f)
	f.Fuzz(func(t *testing.T, tenant, export string, recs []byte, at uint16, flip byte) {
		s, err := fuzzSnapshot(tenant, export, recs)
		if err != nil {
			if !errors.Is(err, snapshot.ErrDuplicateKey) {
				t.Fatalf("build: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := s.Encode(&buf); err != nil {
			if !errors.Is(err, snapshot.ErrTooLong) {
				t.Fatalf("encode: %v", err)
			}
			return
		}
		data := buf.Bytes()
		got, err := snapshot.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("decode of an encoded snapshot: %v", err)
		}
		if !same(s, got) {
			t.Fatalf("round trip changed the snapshot")
		}
		cut := int(at) % len(data)
		if _, err := snapshot.Decode(bytes.NewReader(data[:cut])); !errors.Is(err, snapshot.ErrCorrupt) {
			t.Fatalf("cut at byte %d of %d: %v, want ErrCorrupt", cut, len(data), err)
		}
		if flip != 0 {
			bad := slices.Clone(data)
			bad[cut] ^= flip
			_, err := snapshot.Decode(bytes.NewReader(bad))
			if !errors.Is(err, snapshot.ErrCorrupt) && !errors.Is(err, snapshot.ErrVersion) {
				t.Fatalf("byte %d changed by %#x: %v, want ErrCorrupt", cut, flip, err)
			}
		}
	})
}

// FuzzSnapshotDecode: any bytes either decode or are refused with
// ErrCorrupt or ErrVersion; what decodes encodes again and decodes to the
// same snapshot.
func FuzzSnapshotDecode(f *testing.F) {
	s, err := fuzzSnapshot("aa750693-e3ea-441b-93fe-6a71a8371afa", "exp-42", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
		2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	empty, _ := snapshot.NewBuilder("t", "e").Build()
	buf.Reset()
	_ = empty.Encode(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("SKBSNAP\x00\x02\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := snapshot.Decode(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, snapshot.ErrCorrupt) && !errors.Is(err, snapshot.ErrVersion) {
				t.Fatalf("refused without ErrCorrupt or ErrVersion: %v", err)
			}
			return
		}
		again, err := snapshot.Decode(bytes.NewReader(encode(t, s)))
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if !same(s, again) {
			t.Fatal("re-encoding changed the snapshot")
		}
		if s.Len() == 0 && s.Count(pifu.EntityPerson) != 0 {
			t.Fatal("counts disagree")
		}
	})
}
