package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// The binary form, version 1 (all integers little-endian):
//
//	magic    "SKBSNAP\x00"        8 bytes
//	version  uint16 = 1
//	tenant   uvarint length, bytes
//	export   uvarint length, bytes
//	nent     uvarint: number of entity sections
//	nent x { name: uvarint length, bytes; count: uvarint;
//	         count x { key hash uint64; content hash uint64 } }, keys strictly ascending
//	checksum uint64: the state checksum
//	filehash uint64: XXH64 of every byte before it
//
// Decode checks all of it: a truncated, corrupt or tampered file is refused.
const (
	magic         = "SKBSNAP\x00"
	formatVersion = 1
	maxIDLen      = 4096
)

// ErrCorrupt is wrapped by every error Decode returns for bad input.
var ErrCorrupt = errors.New("snapshot: corrupt")

// ErrVersion is wrapped by the error Decode returns for a format version it
// does not know (a snapshot written by a newer skolebuss).
var ErrVersion = errors.New("snapshot: unsupported format version")

// ErrTooLong is wrapped by the error Encode returns for a tenant or export
// id longer than Decode reads (4096 bytes): such a snapshot is never
// written, since it could not be read back.
var ErrTooLong = errors.New("snapshot: id too long")

// Encode writes the snapshot in its versioned binary form to w. It does not
// close w.
func (s *Snapshot) Encode(w io.Writer) error {
	for _, id := range []struct{ what, v string }{{"tenant", s.tenant}, {"export id", s.exportID}} {
		if len(id.v) > maxIDLen {
			return fmt.Errorf("%w: %s of %d bytes, at most %d", ErrTooLong, id.what, len(id.v), maxIDLen)
		}
	}
	d := xxhash.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, d), 64<<10)
	var tmp [binary.MaxVarintLen64 + 16]byte
	put := func(b []byte) { _, _ = bw.Write(b) }
	uvar := func(v uint64) { put(binary.AppendUvarint(tmp[:0], v)) }
	str := func(v string) { uvar(uint64(len(v))); _, _ = bw.WriteString(v) }

	put([]byte(magic))
	put(binary.LittleEndian.AppendUint16(tmp[:0], formatVersion))
	str(s.tenant)
	str(s.exportID)
	uvar(NumEntities)
	for i, es := range s.ents {
		str(string(pifu.Entities[i]))
		uvar(uint64(len(es)))
		for _, e := range es {
			b := binary.LittleEndian.AppendUint64(tmp[:0], e.Key)
			put(binary.LittleEndian.AppendUint64(b, e.Content))
		}
	}
	put(binary.LittleEndian.AppendUint64(tmp[:0], uint64(s.sum)))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snapshot: encode %s/%s: %w", s.tenant, s.exportID, err)
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint64(tmp[:0], d.Sum64())); err != nil {
		return fmt.Errorf("snapshot: encode %s/%s: %w", s.tenant, s.exportID, err)
	}
	return nil
}

// decoder reads the binary form, hashing and counting what it reads.
type decoder struct {
	r     *bufio.Reader
	d     *xxhash.Digest
	off   int64
	buf   [16]byte
	chunk []byte // of entries
}

func (dc *decoder) fail(what string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: at byte %d reading %s: %w", ErrCorrupt, dc.off, what, err)
}

func (dc *decoder) full(b []byte, what string) error {
	n, err := io.ReadFull(dc.r, b)
	dc.off += int64(n)
	if err != nil {
		return dc.fail(what, err)
	}
	_, _ = dc.d.Write(b)
	return nil
}

func (dc *decoder) uvarint(what string) (uint64, error) {
	v, err := binary.ReadUvarint(byteCounter{dc})
	if err != nil {
		return 0, dc.fail(what, err)
	}
	_, _ = dc.d.Write(binary.AppendUvarint(dc.buf[:0], v))
	return v, nil
}

type byteCounter struct{ dc *decoder }

func (b byteCounter) ReadByte() (byte, error) {
	c, err := b.dc.r.ReadByte()
	if err == nil {
		b.dc.off++
	}
	return c, err
}

func (dc *decoder) str(what string, limit uint64) (string, error) {
	n, err := dc.uvarint(what + " length")
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", dc.fail(what, fmt.Errorf("length %d exceeds %d", n, limit))
	}
	b := make([]byte, n)
	if err := dc.full(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

// Decode reads a snapshot written by Encode. It may read r past the end of the
// snapshot (it buffers), and does not close r. Bad input
// gives an error wrapping ErrCorrupt (or ErrVersion) that says at which byte
// and in which part the input went wrong.
func Decode(r io.Reader) (*Snapshot, error) {
	dc := &decoder{r: bufio.NewReaderSize(r, 64<<10), d: xxhash.New()}
	var m [len(magic)]byte
	if err := dc.full(m[:], "magic"); err != nil {
		return nil, err
	}
	if string(m[:]) != magic {
		return nil, dc.fail("magic", errors.New("not a skolebuss snapshot"))
	}
	if err := dc.full(dc.buf[:2], "version"); err != nil {
		return nil, err
	}
	if v := binary.LittleEndian.Uint16(dc.buf[:2]); v != formatVersion {
		return nil, fmt.Errorf("%w %d (this build reads %d)", ErrVersion, v, formatVersion)
	}
	s := &Snapshot{}
	var err error
	if s.tenant, err = dc.str("tenant", maxIDLen); err != nil {
		return nil, err
	}
	if s.exportID, err = dc.str("export id", maxIDLen); err != nil {
		return nil, err
	}
	nent, err := dc.uvarint("entity count")
	if err != nil {
		return nil, err
	}
	if nent > NumEntities {
		return nil, dc.fail("entity count", fmt.Errorf("%d sections, at most %d", nent, NumEntities))
	}
	var have [NumEntities]bool
	for range nent {
		name, err := dc.str("entity name", 64)
		if err != nil {
			return nil, err
		}
		i, ok := EntityIndex(pifu.Entity(name))
		if !ok || have[i] {
			return nil, dc.fail("entity name", fmt.Errorf("unknown or repeated entity %q", name))
		}
		have[i] = true
		if s.ents[i], err = dc.entries(name); err != nil {
			return nil, err
		}
		for _, e := range s.ents[i] {
			s.sum.Add(e.Key, e.Content)
		}
	}
	if err := dc.full(dc.buf[:8], "checksum"); err != nil {
		return nil, err
	}
	if stored := Checksum(binary.LittleEndian.Uint64(dc.buf[:8])); stored != s.sum {
		return nil, dc.fail("checksum", fmt.Errorf("stored %s, records sum to %s", stored, s.sum))
	}
	want := dc.d.Sum64()
	if err := dc.full(dc.buf[:8], "file hash"); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint64(dc.buf[:8]); got != want {
		return nil, dc.fail("file hash", fmt.Errorf("stored %016x, content hashes to %016x", got, want))
	}
	return s, nil
}

// entries reads one entity's records, a chunk of them at a time. The count
// is trusted for the allocation only up to entriesPrealloc records: a
// corrupt count cannot make it allocate more before the records run out,
// and a larger entity grows as its records arrive.
func (dc *decoder) entries(name string) ([]Entry, error) {
	what := name + " record count"
	n, err := dc.uvarint(what)
	if err != nil {
		return nil, err
	}
	if n > 1<<32 {
		return nil, dc.fail(what, fmt.Errorf("%d records is not plausible", n))
	}
	es := make([]Entry, 0, min(n, entriesPrealloc))
	if dc.chunk == nil && n > 0 {
		dc.chunk = make([]byte, 16*entriesChunk)
	}
	for done := uint64(0); done < n; {
		b := dc.chunk[:16*min(n-done, entriesChunk)]
		m, err := io.ReadFull(dc.r, b)
		dc.off += int64(m)
		if err != nil {
			return nil, dc.fail(fmt.Sprintf("%s record %d of %d", name, done+uint64(m)/16+1, n), err)
		}
		_, _ = dc.d.Write(b)
		for i := 0; i < len(b); i += 16 {
			e := Entry{Key: binary.LittleEndian.Uint64(b[i:]), Content: binary.LittleEndian.Uint64(b[i+8:])}
			if len(es) > 0 && es[len(es)-1].Key >= e.Key {
				dc.off -= int64(len(b) - i - 16) // at the end of the record out of order
				return nil, dc.fail(fmt.Sprintf("%s record %d of %d", name, len(es)+1, n), errors.New("keys out of order"))
			}
			es = append(es, e)
		}
		done += uint64(len(b) / 16)
	}
	return es, nil
}

const (
	entriesPrealloc = 1 << 21 // 32 MiB of entries
	entriesChunk    = 4096    // records read and hashed at once
)
