package diff_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// eventID is the event id as Change.ID documents it, written out the plain
// way. The ids must not change between versions without cause: a redo by a
// newer publisher must compute the ids the stream holds to find what it
// already stored.
func eventID(tenant, exportID string, e pifu.Entity, key string, op diff.Op, content uint64, base snapshot.Checksum) string {
	h := sha256.New()
	for _, s := range []string{tenant, exportID, string(e), key, string(op)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], content)
	binary.LittleEndian.PutUint64(b[8:], uint64(base))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Every change of a changed generation (creations, updates and deletions,
// whose ids are computed in the pass and spooled) carries the documented id
// of its entity, key, op, content and base state.
func TestChangeIDsAreTheDocumentedOnes(t *testing.T) {
	if got, want := diff.EventID(tenant, "e1", pifu.EntityPerson, "Flyt/p-1", diff.Updated, 0x0123456789abcdef, 42),
		eventID(tenant, "e1", pifu.EntityPerson, "Flyt/p-1", diff.Updated, 0x0123456789abcdef, 42); got != want {
		t.Fatalf("EventID %s, want %s", got, want)
	}
	m0 := newMuni(4, 2, 3, 6)
	r0, r1 := m0.records(), nextGeneration(m0).records()
	s0 := mustSnapshot(t, r0, "e0")
	for i, o := range []outcome{runDiff(t, diff.Config{}, nil, nil, r0, "e0"), runDiff(t, diff.Config{}, s0, r0, r1, "e1")} {
		exportID := []string{"e0", "e1"}[i]
		if o.err != nil {
			t.Fatal(o.err)
		}
		ops := map[diff.Op]int{}
		for _, c := range o.changes {
			ops[c.Op]++
			if want := eventID(tenant, exportID, c.Entity, c.Key, c.Op, c.ContentHash, o.res.Base); c.ID != want {
				t.Fatalf("change %d (%s %s %s): id %s, want %s", c.Seq, c.Entity, c.Op, c.Key, c.ID, want)
			}
		}
		if o.res.Base != 0 && (ops[diff.Created] == 0 || ops[diff.Updated] == 0 || ops[diff.Deleted] == 0) {
			t.Fatalf("the changed generation has %v: every op must be checked", ops)
		}
	}
}
