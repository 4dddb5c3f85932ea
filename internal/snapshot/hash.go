package snapshot

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// KeyHash is the identity of a record within its tenant: XXH64 (seed 0) of
// the entity name, one zero byte and the record's key. The entity is part of
// the hash, so a group that turns into an org is a deletion and a creation.
func KeyHash(e pifu.Entity, key string) uint64 {
	d := xxhash.New()
	keyHash(d, e, key)
	return d.Sum64()
}

func keyHash(d *xxhash.Digest, e pifu.Entity, key string) {
	d.Reset()
	_, _ = d.WriteString(string(e))
	_, _ = d.Write([]byte{0})
	_, _ = d.WriteString(key)
}

// ContentHash is XXH64 (seed 0) of a record's canonical JSON: the bytes
// json.Marshal produces for rec.Object(). The record types marshal
// deterministically (structs in field order, no maps), and these are the very
// bytes a change event carries as its "object", so a vendor that keeps the
// raw object of each event can recompute the hash and the state checksum.
func ContentHash(rec pifu.Record) (uint64, error) {
	b, err := json.Marshal(rec.Object())
	if err != nil {
		return 0, fmt.Errorf("snapshot: marshal %s %s: %w", rec.Entity(), rec.Key(), err)
	}
	return xxhash.Sum64(b), nil
}

// Mix is one record's share of the state checksum: XXH64 (seed 0) of the
// key hash and the content hash, each as 8 little-endian bytes.
func Mix(keyHash, contentHash uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], keyHash)
	binary.LittleEndian.PutUint64(b[8:], contentHash)
	return xxhash.Sum64(b[:])
}

// Checksum is the order-independent checksum of a tenant's state: the sum,
// modulo 2^64, of Mix(key hash, content hash) over every record. Records can
// be added in any order; the zero value is the checksum of an empty state.
type Checksum uint64

// Add counts one record in.
func (c *Checksum) Add(keyHash, contentHash uint64) { *c += Checksum(Mix(keyHash, contentHash)) }

// String is the checksum as 16 lower-case hex digits, the form events carry.
func (c Checksum) String() string { return fmt.Sprintf("%016x", uint64(c)) }

// Hasher computes key and content hashes with reused buffers. It is not safe
// for concurrent use; give each goroutine its own.
type Hasher struct {
	buf []byte
	d   *xxhash.Digest
}

// NewHasher returns a Hasher.
func NewHasher() *Hasher {
	return &Hasher{d: xxhash.New()}
}

// Key is KeyHash without allocation.
func (h *Hasher) Key(e pifu.Entity, key string) uint64 {
	keyHash(h.d, e, key)
	return h.d.Sum64()
}

// Content returns the record's content hash (ContentHash) and its
// canonical JSON, the bytes json.Marshal produces for rec.Object(), written
// without reflection. The bytes are valid only until the next call of
// Content. The error is always nil (the record types always encode); it is
// kept for callers that treat encoding as fallible.
func (h *Hasher) Content(rec pifu.Record) (uint64, []byte, error) {
	h.buf = appendCanonical(h.buf[:0], rec)
	return xxhash.Sum64(h.buf), h.buf, nil
}
