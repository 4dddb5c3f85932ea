package projection

import (
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Snapshot is the state a vendor with p's profile holds after an export:
// snapshot.FromRecords over the records of r (their memberships marked as
// the canonical ones are, snapshot.Marked) cut to the profile (judged by
// the relations after the change), the records the profile removes left
// out. Its Checksum is what the vendor's export.completed carries, computed
// as the canonical one is: the sum of snapshot.Mix(key hash, content hash)
// over the projected records, where a content hash is XXH64 of the very
// object bytes the vendor's events carry (Change.Object). A vendor kit
// verifies its copy by the same sum over the objects it holds. It returns
// how many later records with a key seen before it skipped, as FromRecords
// does.
func (p *Projector) Snapshot(tenant, exportID string, r snapshot.RecordReader) (*snapshot.Snapshot, int, error) {
	return snapshot.FromMarkedRecords(tenant, exportID, projected{p: p, r: snapshot.Marked(r)})
}

// projected reads the records of r cut to p's profile.
type projected struct {
	p *Projector
	r snapshot.RecordReader
}

func (x projected) Next() (pifu.Record, error) {
	for {
		rec, err := x.r.Next()
		if err != nil {
			return rec, err
		}
		if out, ok := x.p.Record(rec); ok {
			return out, nil
		}
	}
}
