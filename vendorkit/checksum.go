package vendorkit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// ContentHash is XXH64 (seed 0) of a record's object bytes.
func ContentHash(object []byte) uint64 { return xxhash.Sum64(object) }

// KeyHash is XXH64 (seed 0) of the entity, one zero byte and the key.
func KeyHash(entity, key string) uint64 { return snapshot.KeyHash(pifu.Entity(entity), key) }

// RecordMix is one record's share of its tenant's checksum: XXH64 of the
// key hash and the content hash, each as 8 little-endian bytes.
func RecordMix(entity, key string, object []byte) uint64 {
	return snapshot.Mix(KeyHash(entity, key), ContentHash(object))
}

// Checksum is a tenant's state checksum: the sum, modulo 2^64, of the
// records' mixes. Records add in any order; the zero value is an empty
// tenant's.
type Checksum uint64

// Add counts a record's mix in; Remove takes it out again.
func (c *Checksum) Add(mix uint64)    { *c += Checksum(mix) }
func (c *Checksum) Remove(mix uint64) { *c -= Checksum(mix) }

// String is the form export.completed carries: "xxh64sum:" and 16
// lower-case hex digits.
func (c Checksum) String() string { return messages.FormatChecksum(snapshot.Checksum(c)) }

// ParseChecksum reads the form String writes.
func ParseChecksum(s string) (Checksum, error) {
	hex, ok := strings.CutPrefix(s, messages.ChecksumPrefix)
	if !ok || len(hex) != 16 {
		return 0, fmt.Errorf("vendorkit: checksum %q is not %s and 16 hex digits", s, messages.ChecksumPrefix)
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("vendorkit: checksum %q is not %s and 16 hex digits", s, messages.ChecksumPrefix)
	}
	return Checksum(v), nil
}
