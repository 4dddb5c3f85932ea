package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Run diffs in.Next against in.Prev and passes the changes to emit in
// order (see the package comment).
//
// On success the Result carries the new snapshot, which the caller makes the
// tenant's once it has stored every emitted change (for an unchanged export
// it is in.Prev under the new export id). On any error the Result is empty
// and no snapshot is to be applied; emitting the same export again later
// gives the same changes with the same ids.
//
// Errors: a held export is a permanent *failure.Error wrapping *HeldError,
// returned before anything is emitted; an error from emit or OnPlan is
// returned wrapped with %w (its class kept); an error reading either export
// is wrapped with %w (the decoder classifies it); the previous export not
// matching in.Prev is permanent ("previous_export_mismatch"); the spool
// failing (disk full) is transient ("spool_io"). Cancelling ctx stops Run
// within about a thousand records or at the next change, returning an error
// that wraps ctx.Err(); changes emitted before that stay emitted.
//
// Run always removes its spool files before it returns. It is safe to run
// concurrently for different tenants (each Run has its own spool directory).
func Run(ctx context.Context, cfg Config, in Input, emit Emit) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if in.Tenant == "" || in.ExportID == "" || in.Next == nil || emit == nil {
		return Result{}, errors.New("diff: Run needs a tenant, an export id, a reader and an emit function")
	}
	prev := in.Prev
	if prev == nil {
		prev, _ = snapshot.NewBuilder(in.Tenant, "").Build()
	} else if prev.Tenant() != in.Tenant {
		return Result{}, failure.Permanentf(failure.ReasonSnapshotMismatch, "diff: snapshot of tenant %q given for tenant %q",
			prev.Tenant(), in.Tenant)
	}
	r := &run{cfg: cfg, in: in, prev: prev, emit: emit, h: snapshot.NewHasher(), base: prev.Checksum(),
		b: snapshot.NewBuilder(in.Tenant, in.ExportID), sp: spool{parent: cfg.SpoolDir}}
	defer func() {
		if err := r.sp.remove(); err != nil {
			cfg.Logger.Warn("diff: removing the spool failed", "tenant", in.Tenant, "dir", r.sp.dir, "err", err)
		}
	}()
	res, err := r.do(ctx)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

type run struct {
	cfg  Config
	in   Input
	prev *snapshot.Snapshot
	emit Emit
	h    *snapshot.Hasher
	b    *snapshot.Builder
	ids  idHasher
	base snapshot.Checksum // of prev: the state the changes apply to

	seen, upd, fetched [snapshot.NumEntities]bitset // over the previous snapshot's entries
	// updates are the new content hashes of updated records, in document
	// order; b collects the created records. Unchanged records are in
	// neither: the new snapshot is built from the old one (successor).
	updates [snapshot.NumEntities][]update
	created map[uint64]struct{}
	counts  [snapshot.NumEntities]Counts
	dups    []Duplicate
	any     bool
	// findings count the memberships that are not whole; deferred holds
	// those whose marks wait for the end of the document (findings.go).
	findings  Findings
	deferred  *spoolFile
	groupSeen string // the key of a group the scan has seen, the last membership's

	sp      spool
	upserts [snapshot.NumEntities]*spoolFile
	deletes [snapshot.NumEntities]*spoolFile
	prevUpd *spoolFile
	prevIdx map[uint64]int64
	emitted int
}

func (r *run) do(ctx context.Context) (Result, error) {
	var prevCounts [snapshot.NumEntities]int
	for i := range prevCounts {
		n := len(r.prev.Entries(i))
		prevCounts[i] = n
		r.seen[i], r.upd[i] = newBitset(n), newBitset(n)
	}
	if err := r.scan(ctx); err != nil {
		return Result{}, err
	}
	changes, refetch := 0, 0
	for i := range r.counts {
		c := &r.counts[i]
		c.Deleted = prevCounts[i] - c.Unchanged - c.Updated
		changes += c.Changes()
		refetch += c.Updated + c.Deleted
	}
	if err := checkHeld(r.cfg, r.in, r.counts, prevCounts, r.any); err != nil {
		return Result{}, err
	}
	p := Plan{Counts: make(map[pifu.Entity]Counts, len(r.counts)), Base: r.base, Duplicates: r.dups, Findings: r.findings}
	for i, c := range r.counts {
		p.Counts[pifu.Entities[i]] = c
	}
	if changes == 0 {
		p.Snapshot = r.prev.WithExportID(r.in.ExportID)
	} else {
		s, err := r.successor()
		if err != nil {
			return Result{}, fmt.Errorf("diff: %w", err) // unreachable: scan drops duplicates
		}
		p.Snapshot = s
	}
	r.b = nil
	if refetch > 0 {
		if err := r.fetchPrevious(ctx, refetch); err != nil {
			return Result{}, err
		}
	}
	if r.in.OnPlan != nil {
		if err := r.in.OnPlan(ctx, p); err != nil {
			return Result{}, fmt.Errorf("diff: plan of export %s: %w", r.in.ExportID, err)
		}
	}
	if changes > 0 {
		if err := r.replay(ctx); err != nil {
			return Result{}, err
		}
	}
	return Result{Plan: p, Emitted: r.emitted}, nil
}

type update struct {
	pos     int
	content uint64
}

// successor builds the new snapshot: the created records, and the previous
// snapshot's records that the export still has, with their new content
// where they were updated.
func (r *run) successor() (*snapshot.Snapshot, error) {
	for i := range r.updates {
		es := r.prev.Entries(i)
		ups := r.updates[i]
		slices.SortFunc(ups, func(a, b update) int { return a.pos - b.pos })
		r.b.Grow(i, r.counts[i].Unchanged+r.counts[i].Updated)
		for j, e := range es {
			if !r.seen[i].get(j) {
				continue
			}
			if len(ups) > 0 && ups[0].pos == j {
				e.Content = ups[0].content
				ups = ups[1:]
			}
			r.b.Add(i, e.Key, e.Content)
		}
		r.updates[i] = nil
	}
	return r.b.Build()
}

func spoolErr(err error) error {
	return failure.New(failure.Transient, failure.ReasonSpoolIO, fmt.Errorf("diff: %w", err))
}

// fetchPrevious reads the previous export for the records that were updated
// (their previous versions, indexed by key hash) and deleted (spooled per
// entity), and stops as soon as it has all of them.
func (r *run) fetchPrevious(ctx context.Context, need int) (err error) {
	if r.in.OpenPrev == nil {
		return failure.Permanentf(failure.ReasonPreviousExportMissing,
			"diff: export %s updates or deletes records, but there is no way to read the previous export %s",
			r.in.ExportID, r.prev.ExportID())
	}
	prevRd, closer, err := r.in.OpenPrev(ctx)
	if err != nil {
		return fmt.Errorf("diff: open previous export %s: %w", r.prev.ExportID(), err)
	}
	rd := prefetch(prevRd)
	defer func() {
		rd.stop()
		if cerr := closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("diff: close previous export %s: %w", r.prev.ExportID(), cerr)
		}
	}()
	for i := range r.fetched {
		r.fetched[i] = newBitset(len(r.prev.Entries(i)))
	}
	for n := 0; need > 0; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("diff: previous export %s: %w", r.prev.ExportID(), err)
			}
		}
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("diff: read previous export %s: %w", r.prev.ExportID(), err)
		}
		e := rec.Entity()
		i, _ := snapshot.EntityIndex(e)
		key := rec.Key()
		kh := r.h.Key(e, key)
		pos, want, found := r.prev.Lookup(i, kh)
		if !found || r.fetched[i].get(pos) {
			continue // not in the snapshot (?), or a later duplicate
		}
		deleted, updated := !r.seen[i].get(pos), r.upd[i].get(pos)
		if !deleted && !updated {
			continue
		}
		r.fetched[i].set(pos)
		need--
		ch, obj, err := r.previousContent(rec, want)
		if err != nil {
			return fmt.Errorf("diff: previous export %s line %d: %w", r.prev.ExportID(), rec.Line, err)
		}
		if ch != want {
			return failure.Permanentf(failure.ReasonPreviousExportMismatch,
				"diff: previous export %s line %d: %s %s differs from the snapshot: not the export the snapshot came from",
				r.prev.ExportID(), rec.Line, e, key)
		}
		fr := frame{op: Deleted, keyHash: kh, content: ch, key: key, object: obj}
		if deleted {
			fr.id = r.ids.id(r.in.Tenant, r.in.ExportID, e, key, Deleted, ch, r.base)
			if r.deletes[i] == nil {
				if r.deletes[i], err = r.sp.create(string(e) + ".deletes"); err != nil {
					return spoolErr(err)
				}
			}
			if _, err := r.deletes[i].write(fr); err != nil {
				return spoolErr(err)
			}
			continue
		}
		if r.prevUpd == nil {
			if r.prevUpd, err = r.sp.create("previous"); err != nil {
				return spoolErr(err)
			}
			r.prevIdx = make(map[uint64]int64)
		}
		fr.op = Updated
		off, err := r.prevUpd.write(fr)
		if err != nil {
			return spoolErr(err)
		}
		r.prevIdx[kh] = off
	}
	if need > 0 {
		return failure.Permanentf(failure.ReasonPreviousExportMismatch,
			"diff: previous export %s lacks %d records its snapshot has: not the export the snapshot came from",
			r.prev.ExportID(), need)
	}
	for _, sf := range append(r.deletes[:], r.prevUpd) {
		if sf != nil {
			if err := sf.flush(); err != nil {
				return spoolErr(err)
			}
		}
	}
	return nil
}
