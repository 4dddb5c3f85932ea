// Package diff turns a tenant's new full PIFU export into the ordered
// created / updated / deleted changes against the tenant's last snapshot,
// in bounded memory.
//
// Run reads the new export once, hashing each record (snapshot.Hasher) and
// looking it up in the previous snapshot. Unchanged records cost a hash and
// a binary search, nothing else: an unchanged export is one pass with no
// disk writes. Changed records are spooled to files in Config.SpoolDir, one
// per entity, because a PIFU document lists persons before groups while the
// changes must go out orgs, groups, persons, memberships. Only when there
// are updates or deletions is the previous export read again, to fetch the
// previous versions of exactly those records. Then the changes are replayed
// to the emit callback in order: creations and updates of orgs, groups,
// persons, memberships (each in document order, but for the memberships
// marked at the end, see below), then deletions of memberships, persons,
// groups, orgs (each in reverse document order, so a school goes before its
// owner).
//
// A membership whose group or person is not in the export, or whose member
// is a group, is marked (pifu.Membership.Incomplete) as part of its content
// and counted in Plan.Findings (findings.go). One whose group and person the
// pass has not met yet is spooled and marked after the export's last record,
// then diffed like the others.
//
// Memory: the previous snapshot (16 bytes a record), the new one being built
// (16 bytes a record), two bits a previous record, the key hashes of created
// records (a first export: every record), and an offset for each updated
// record. For 800,000 records that is well under 100 MiB; see the package
// benchmarks.
package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// RecordReader yields the records of an export; io.EOF ends them.
// *pifu.Decoder is one.
type RecordReader interface {
	Next() (pifu.Record, error)
}

// Op is what happened to a record.
type Op string

const (
	Created Op = "created"
	Updated Op = "updated"
	Deleted Op = "deleted"
)

// Change is one change event's content.
type Change struct {
	// ID is the deterministic event id: 32 hex digits of SHA-256 over the
	// tenant, the export id, entity, key, op, the content hash of Object and
	// the checksum of the state the change applies to. A redo of the export
	// gives the same ids, so the publisher finds what the stream already
	// holds and the stream drops a second copy within its duplicate window;
	// the same transition in another export (A to B, back, and to B again
	// within the window) is a new id, so the stream does not drop it as a
	// duplicate.
	ID     string
	Seq    int // 1-based position among the export's changes
	Entity pifu.Entity
	Op     Op
	Key    string
	// ContentHash is snapshot.ContentHash of Object.
	ContentHash uint64
	// Object is the record's canonical JSON after the change; for a deletion,
	// the record as it was.
	Object json.RawMessage
	// Previous, on updates only, is a JSON object of the top-level fields of
	// Object that changed, each with its previous value: a field that was
	// absent before has null; a field that is absent now has its old value.
	Previous json.RawMessage
}

// Record decodes Object into a record of the change's entity.
func (c Change) Record() (pifu.Record, error) {
	var rec pifu.Record
	var err error
	switch c.Entity {
	case pifu.EntityOrg, pifu.EntityGroup:
		rec.Group = new(pifu.Group)
		err = json.Unmarshal(c.Object, rec.Group)
	case pifu.EntityPerson:
		rec.Person = new(pifu.Person)
		err = json.Unmarshal(c.Object, rec.Person)
	case pifu.EntityMembership:
		rec.Membership = new(pifu.Membership)
		err = json.Unmarshal(c.Object, rec.Membership)
	default:
		return rec, fmt.Errorf("diff: change %s: unknown entity %q", c.ID, c.Entity)
	}
	if err != nil {
		return rec, fmt.Errorf("diff: change %s: decode %s: %w", c.ID, c.Entity, err)
	}
	return rec, nil
}

// Counts are the outcome of a diff for one entity.
type Counts struct {
	Created, Updated, Deleted, Unchanged int
	// Duplicates counts records skipped because an earlier record of the
	// same export had the same key (the first one wins).
	Duplicates int
}

// Changes is Created + Updated + Deleted.
func (c Counts) Changes() int { return c.Created + c.Updated + c.Deleted }

func (c Counts) add(o Counts) Counts {
	return Counts{c.Created + o.Created, c.Updated + o.Updated, c.Deleted + o.Deleted,
		c.Unchanged + o.Unchanged, c.Duplicates + o.Duplicates}
}

// Duplicate is a record skipped because its key was already seen.
type Duplicate struct {
	Entity pifu.Entity
	Key    string
	Line   int // where the skipped record starts in the new export
}

// MaxDuplicates is how many duplicates a Result lists; Counts has them all.
const MaxDuplicates = 100

// Plan is what Run found in the pass over the new export, given to
// Input.OnPlan before the first change is emitted.
type Plan struct {
	Counts map[pifu.Entity]Counts
	// Snapshot is the state after every change is applied. It is not yet the
	// tenant's: it becomes so only when Run returns without error.
	Snapshot *snapshot.Snapshot
	// Base is the checksum of the state the changes apply to.
	Base       snapshot.Checksum
	Duplicates []Duplicate // the first MaxDuplicates
	// Findings are of the whole export, changed records or not.
	Findings Findings
}

// Total sums the counts of every entity.
func (p Plan) Total() Counts {
	var t Counts
	for _, c := range p.Counts {
		t = t.add(c)
	}
	return t
}

// Result is what a successful Run did.
type Result struct {
	Plan
	Emitted int // changes passed to emit
}

// Config tunes Run. The zero value takes the defaults.
type Config struct {
	// SpoolDir is where Run keeps its temporary files (a directory of its own
	// inside it, removed before Run returns). Default: os.TempDir().
	SpoolDir string
	// DeleteThreshold is the largest share of the previous snapshot's
	// records an export may delete, overall and per entity (see HeldError).
	// Default 0.2; it must be in (0, 1].
	DeleteThreshold float64
	// MinEntityRecords: the per-entity share is checked only for entities
	// that had at least this many records. Default 1000: in a small
	// municipality an ordinary week (a few pupils leaving, a teaching group
	// ending) can delete a fifth of its hundred-odd memberships, and the
	// overall share still catches an export that lost a whole entity there;
	// in a large one, losing a fifth of the memberships or of the persons is
	// held even when the overall share stays under the threshold.
	MinEntityRecords int
	// Force applies an export even if it crosses the threshold.
	Force bool
	// Logger gets what Run cannot return (a spool directory it failed to
	// remove). Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.SpoolDir == "" {
		c.SpoolDir = os.TempDir()
	}
	if c.DeleteThreshold == 0 {
		c.DeleteThreshold = 0.2
	}
	if c.MinEntityRecords == 0 {
		c.MinEntityRecords = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a bad configuration, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !(c.DeleteThreshold > 0 && c.DeleteThreshold <= 1) {
		return fmt.Errorf("diff: delete threshold %v: must be in (0, 1]", c.DeleteThreshold)
	}
	if c.MinEntityRecords < 0 {
		return fmt.Errorf("diff: min entity records %d: must not be negative", c.MinEntityRecords)
	}
	if fi, err := os.Stat(c.SpoolDir); err != nil {
		return fmt.Errorf("diff: spool dir: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("diff: spool dir %s: not a directory", c.SpoolDir)
	}
	return nil
}

// Input is one tenant's new export and what it is compared with.
type Input struct {
	Tenant   string
	ExportID string
	// Prev is the tenant's last applied snapshot, nil for a first export.
	// It must be the tenant's.
	Prev *snapshot.Snapshot
	// Next yields the new export's records. Run reads it to io.EOF (or to
	// its first error) and does not close it.
	Next RecordReader
	// OpenPrev reopens the export Prev came from. Run calls it at most once,
	// and only when there are updates or deletions; it closes the closer
	// before it returns. It may stop reading before io.EOF. Required when
	// Prev has records.
	OpenPrev func(ctx context.Context) (RecordReader, io.Closer, error)
	// Borrow says that emit does not keep a Change's Object or Previous
	// after it returns (it copies what it needs), so Run may reuse their
	// memory for the next change instead of allocating each one.
	Borrow bool
	// OnPlan, if set, is called once after the pass over the new export and
	// the threshold check, before the first change (also when there is none).
	// An error stops Run with that error.
	OnPlan func(ctx context.Context, p Plan) error
}

// Emit receives the changes in order, one at a time. It may keep the
// Change, unless Input.Borrow says otherwise. An error stops Run, which
// returns it.
type Emit func(ctx context.Context, c Change) error
