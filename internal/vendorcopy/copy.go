package vendorcopy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Status is what the vendor knows about one tenant.
type Status struct {
	Tenant string
	// Current is the export whose events are being applied (the last
	// export.started); LastExport the last export whose export.completed
	// was applied, and Matched whether the copy then had exactly the counts
	// and the checksum that export.completed announced (Mismatch says how
	// it differed).
	Current    string
	LastExport string
	Matched    bool
	Mismatch   string
	Exports    int // export.completed events applied
	// Applied counts change events applied; Duplicates the events (changes
	// and boundaries) that came again with an id already applied, and were
	// skipped.
	Applied    int
	Duplicates int
	// Expected is the number of change events the current export announced
	// in export.started; InExport how many of them are applied so far.
	Expected, InExport int
	// Counts are the records of the copy per entity; Checksum its state
	// checksum in the form of export.completed.
	Counts   map[pifu.Entity]int
	Checksum string
}

func (s Status) clone() Status {
	s.Counts = maps.Clone(s.Counts)
	return s
}

type record struct {
	obj json.RawMessage
	mix uint64 // snapshot.Mix of its key and content hash
}

// tenantCopy is the vendor's copy of one tenant. It is guarded by the
// Vendor's mutex.
type tenantCopy struct {
	recs     [snapshot.NumEntities]map[string]record
	checksum snapshot.Checksum
	seen     idSet
	status   Status
}

func newTenantCopy(tenant string, remember int) *tenantCopy {
	t := &tenantCopy{seen: newIDSet(remember), status: Status{Tenant: tenant}}
	for i := range t.recs {
		t.recs[i] = make(map[string]record)
	}
	return t
}

// change applies one change event: created and updated upsert the object,
// deleted removes the record. It reports false for an event already applied.
func (t *tenantCopy) change(ev messages.Event) bool {
	if !t.seen.add(ev.ID) {
		t.status.Duplicates++
		return false
	}
	i, _ := snapshot.EntityIndex(ev.Entity)
	m := t.recs[i]
	old, had := m[ev.Key]
	if had {
		t.checksum -= snapshot.Checksum(old.mix)
	}
	switch ev.Op {
	case messages.OpDeleted:
		delete(m, ev.Key)
	default:
		mix := snapshot.Mix(snapshot.KeyHash(ev.Entity, ev.Key), xxhash.Sum64(ev.Object))
		m[ev.Key] = record{obj: ev.Object, mix: mix}
		t.checksum += snapshot.Checksum(mix)
	}
	t.status.Applied++
	t.status.InExport++
	return true
}

// boundary applies export.started or export.completed. A resync's
// export.started (on a vendor's stream) drops the copy: the created events
// of the whole state follow.
func (t *tenantCopy) boundary(b messages.Boundary) bool {
	if !t.seen.add(b.ID) {
		t.status.Duplicates++
		return false
	}
	switch b.Phase {
	case messages.PhaseStarted:
		if b.Resync { // the whole state follows: what the copy holds goes
			for i := range t.recs {
				t.recs[i] = make(map[string]record)
			}
			t.checksum = 0
		}
		t.status.Current = b.ExportID
		t.status.Expected, t.status.InExport = 0, 0
		for _, c := range b.Counts {
			t.status.Expected += c.Created + c.Updated + c.Deleted
		}
	case messages.PhaseCompleted:
		t.status.LastExport = b.ExportID
		t.status.Exports++
		t.status.Mismatch = t.verify(b)
		t.status.Matched = t.status.Mismatch == ""
	}
	return true
}

// verify compares the copy with what export.completed says the state is.
func (t *tenantCopy) verify(b messages.Boundary) string {
	var diffs []string
	for i, e := range pifu.Entities {
		want := b.Counts[e].Total
		if got := len(t.recs[i]); got != want {
			diffs = append(diffs, fmt.Sprintf("%d %s records, export.completed says %d", got, e, want))
		}
	}
	if got := messages.FormatChecksum(t.checksum); got != b.Checksum {
		diffs = append(diffs, fmt.Sprintf("checksum %s, export.completed says %s", got, b.Checksum))
	}
	return strings.Join(diffs, "; ")
}

func (t *tenantCopy) snapshotStatus() Status {
	s := t.status.clone()
	s.Counts = make(map[pifu.Entity]int, len(pifu.Entities))
	for i, e := range pifu.Entities {
		s.Counts[e] = len(t.recs[i])
	}
	s.Checksum = messages.FormatChecksum(t.checksum)
	return s
}

// idSet remembers the last max event ids applied.
type idSet struct {
	set  map[[16]byte]struct{}
	ring [][16]byte
	max  int
	next int
}

func newIDSet(max int) idSet { return idSet{set: make(map[[16]byte]struct{}), max: max} }

// add reports whether id is new, and remembers it (forgetting the oldest
// once max are remembered).
func (s *idSet) add(id string) bool {
	var k [16]byte
	if len(id) != 32 {
		sum := sha256.Sum256([]byte(id))
		k = [16]byte(sum[:16])
	} else if _, err := hex.Decode(k[:], []byte(id)); err != nil {
		sum := sha256.Sum256([]byte(id))
		k = [16]byte(sum[:16])
	}
	if _, ok := s.set[k]; ok {
		return false
	}
	s.set[k] = struct{}{}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, k)
		return true
	}
	delete(s.set, s.ring[s.next])
	s.ring[s.next] = k
	s.next = (s.next + 1) % len(s.ring)
	return true
}

func xxhashSum(b []byte) uint64 { return xxhash.Sum64(b) }
