package fanout

import (
	"context"
	"errors"
	"sort"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// For a profile without guardians a person is dropped while it is a
// guardian only (projection.Index): some person links to it and it is a
// member of no group but guardian groups. That can change without a change
// event of the person: a guardian whose last linking pupil leaves stops
// being one, a teacher who leaves the last class and is linked as a
// guardian becomes one. The projector sees no event of such a person, so
// the fan-out makes one: a created or deleted of the person's record,
// which the export leaves unchanged and its export object holds.

// errVisibilityStale means the export object of the export delivered is
// gone (a later export's snapshot replaced it), so the records of the
// persons whose visibility flips cannot be read: the vendor gets a resync
// of the tenant instead.
var errVisibilityStale = errors.New("the export object of the export is gone")

// visibilityID is the canonical id of the made change of the person key in
// the export exportID with op: the vendor's event id is
// VendorEventID(visibilityID, vendor), a hash of vendor, export, key and
// op, the same on every redo.
func visibilityID(exportID, key string, op messages.Op) string {
	return "visibility\x00" + exportID + "\x00" + key + "\x00" + string(op)
}

// flips are the made changes of an export for a profile without
// guardians: the persons becoming visible (created, sent before the
// export's changes) and those becoming guardians only (deleted, sent after
// them). Each is an update of the record to itself, which the projector
// judges by the relations before and after the export.
type flips struct {
	created, deleted []change
}

// flipped is the flips of an export found once for every vendor with the
// same index before it that takes every change.
type flipped struct {
	ready chan struct{}
	f     *flips
	err   error
}

// sharedFlips is visibilityFlips, found by the first vendor with the index
// before the export of x's and shared with the others, when the export is
// in memory and x takes every change of it.
func (x *export) sharedFlips(ctx context.Context, before, after *projection.Index) (*flips, error) {
	d, ok := x.src.(*decoded)
	if !ok || !d.whole(x.st.LastSeq) {
		return x.visibilityFlips(ctx, before, after)
	}
	key := string(x.st.Index)
	d.mu.Lock()
	e, found := d.flipsBy[key]
	if !found {
		if d.flipsBy == nil {
			d.flipsBy = map[string]*flipped{}
		}
		e = &flipped{ready: make(chan struct{})}
		d.flipsBy[key] = e
	}
	d.mu.Unlock()
	if found {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.f, nil
		}
		return x.visibilityFlips(ctx, before, after) // the first one failed: find them alone
	}
	e.f, e.err = x.visibilityFlips(ctx, before, after)
	if e.err != nil {
		d.mu.Lock()
		delete(d.flipsBy, key) // the next one finds them again
		d.mu.Unlock()
	}
	close(e.ready)
	return e.f, e.err
}

// visibilityFlips finds the persons of the export whose guardian-only
// answer differs between the index before and after it and who have no
// change event of their own in it (those the projector judges itself), and
// makes their changes from their records in the export object.
func (x *export) visibilityFlips(ctx context.Context, before, after *projection.Index) (*flips, error) {
	if x.st.ExportID == "" {
		// The vendor's first export of the tenant: every person in it is
		// created by an event of its own.
		return &flips{}, nil
	}
	own := map[string]bool{}             // persons with a change event of their own
	cands := map[string]pifu.SourcedID{} // persons whose links or roster memberships changed
	if err := x.src.each(ctx, x.st.LastSeq, func(ch *change) error {
		rec := ch.c.Record
		switch {
		case rec.Person != nil:
			own[ch.key] = true
			for _, c := range rec.Person.ContactPersons {
				cands[c.Person.Key()] = c.Person
			}
			if old := ch.c.Old.Person; old != nil {
				for _, c := range old.ContactPersons {
					cands[c.Person.Key()] = c.Person
				}
			}
		case rec.Membership != nil:
			cands[rec.Membership.Member.Key()] = rec.Membership.Member
		}
		return nil
	}); err != nil {
		return nil, err
	}
	flipped := map[string]bool{}
	for k, id := range cands {
		if !own[k] && before.GuardianPerson(id) != after.GuardianPerson(id) {
			flipped[k] = true
		}
	}
	out := &flips{}
	if len(flipped) == 0 {
		return out, nil
	}
	src, err := x.f.current(ctx, x.done.Tenant)
	if err != nil {
		return nil, err
	}
	if src.exportID != x.done.ExportID {
		return nil, errVisibilityStale
	}
	var recs []pifu.Record
	if _, err := x.f.readExport(ctx, x.done.Tenant, src, func(rec pifu.Record, _ int, _ uint64) error {
		if rec.Person != nil && flipped[rec.Key()] {
			recs = append(recs, rec)
		}
		return nil
	}); err != nil {
		if ctx.Err() == nil && src.exportID == x.done.ExportID {
			// Gone while read: replaced by a later export's.
			if cur, cerr := x.f.current(ctx, x.done.Tenant); cerr == nil && cur.exportID != src.exportID {
				return nil, errVisibilityStale
			}
		}
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key() < recs[j].Key() })
	for _, rec := range recs {
		key := rec.Key()
		c := change{key: key, entity: pifu.EntityPerson, time: x.done.Time,
			c: projection.Canonical{Op: messages.OpUpdated, Record: rec, Old: rec}}
		if after.GuardianPerson(rec.Person.SourcedID) {
			c.id = visibilityID(x.done.ExportID, key, messages.OpDeleted)
			out.deleted = append(out.deleted, c)
		} else {
			c.id = visibilityID(x.done.ExportID, key, messages.OpCreated)
			out.created = append(out.created, c)
		}
	}
	return out, nil
}

// each calls fn with the export's changes for the vendor: the made
// creations, the change events after the vendor's last sequence, the made
// deletions.
func (x *export) each(ctx context.Context, fn func(*change) error) error {
	if x.flips != nil {
		for i := range x.flips.created {
			if err := fn(&x.flips.created[i]); err != nil {
				return err
			}
		}
	}
	if err := x.src.each(ctx, x.st.LastSeq, fn); err != nil {
		return err
	}
	if x.flips != nil {
		for i := range x.flips.deleted {
			if err := fn(&x.flips.deleted[i]); err != nil {
				return err
			}
		}
	}
	return nil
}
