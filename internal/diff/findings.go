package diff

import (
	"context"
	"fmt"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Findings counts the memberships of an export that are not whole: each is
// marked in its record (pifu.Membership.Incomplete), which is part of its
// content, so a membership whose person leaves the document is updated
// with the mark and updated again, without it, when the person returns.
// Duplicates skipped by the diff are not counted.
type Findings struct {
	// DanglingMemberships: the group, or the member as a person, is not in
	// the document.
	DanglingMemberships int
	// GroupMembers: the member is a group (declared by idtype 2, or a group
	// or org of the document that is no person of it).
	GroupMembers int
}

// IsZero reports whether there is nothing to tell.
func (f Findings) IsZero() bool { return f == Findings{} }

// count counts one membership's marks: a membership missing its group and
// its person is one dangling membership.
func (f *Findings) count(marks []string) {
	dangling := false
	for _, m := range marks {
		switch m {
		case pifu.IncompleteGroupMember:
			f.GroupMembers++
		case pifu.IncompleteGroup, pifu.IncompletePerson:
			dangling = true
		}
	}
	if dangling {
		f.DanglingMemberships++
	}
}

// The marks of a membership need the whole document: its group and person
// usually come before it (a PIFU document lists persons, groups, then
// memberships), but a document need not be ordered so, and a missing one is
// known missing only at its end. The scan marks a membership at once when
// its group and its person have been seen, which is nearly always; the
// others (dangling ones, group members, any membership of a document that
// lists memberships first) are deferred: spooled unmarked, with no state
// but the spool, and marked after the scan (resolveDeferred). What has been
// seen is the diff's own state, so no further set of keys is kept: a
// record is in the document so far when the previous snapshot has it and
// the scan has seen it, or the scan created it.
//
// A deferred frame is an ordinary spool frame (key hash, key, the canonical
// JSON without marks) whose content field is 1 when the member is declared
// a group (idtype 2), 0 otherwise; the event id is computed once the
// content is known.

// seenSoFar reports whether the document has had the record of e and key so
// far in the scan.
func (r *run) seenSoFar(e pifu.Entity, key string) bool {
	i, _ := snapshot.EntityIndex(e)
	kh := r.h.Key(e, key)
	if pos, _, found := r.prev.Lookup(i, kh); found {
		return r.seen[i].get(pos)
	}
	_, ok := r.created[kh]
	return ok
}

// inPrev reports whether the previous snapshot, the state of the previous
// document, has the record of e and key.
func (r *run) inPrev(e pifu.Entity, key string) bool {
	i, _ := snapshot.EntityIndex(e)
	_, _, found := r.prev.Lookup(i, r.h.Key(e, key))
	return found
}

// markNow is the marks of membership m, whose key is key, and true when the
// scan can tell them already: its group and its person have been seen, or
// it is declared a group member and its group has been seen. It builds no
// key: the group's and the member's are parts of the membership's.
func (r *run) markNow(m *pifu.Membership, key string) ([]string, bool) {
	g, member, ok := splitMembershipKey(key)
	if !ok {
		return nil, false
	}
	// A PIFU <membership> is one group with its members: the records of
	// one follow each other, and a group once seen stays seen.
	if g != r.groupSeen {
		if !r.seenSoFar(pifu.EntityGroup, g) && !r.seenSoFar(pifu.EntityOrg, g) {
			return nil, false
		}
		r.groupSeen = g
	}
	if m.IDType == pifu.IDTypeGroup {
		return pifu.Incompleteness(true, pifu.MemberGroup), true
	}
	if r.seenSoFar(pifu.EntityPerson, member) {
		return nil, true
	}
	return nil, false
}

// deferMembership spools a membership whose marks wait for the end of the
// document; obj is its canonical JSON without marks.
func (r *run) deferMembership(kh uint64, key string, obj []byte, groupIDType bool) error {
	if r.deferred == nil {
		var err error
		if r.deferred, err = r.sp.create("membership.deferred"); err != nil {
			return spoolErr(err)
		}
	}
	fr := frame{op: Created, keyHash: kh, key: key, object: obj}
	if groupIDType {
		fr.content = 1
	}
	if _, err := r.deferred.write(fr); err != nil {
		return spoolErr(err)
	}
	return nil
}

// resolveDeferred marks the deferred memberships now that the whole
// document is known, and diffs them as the scan does the others.
func (r *run) resolveDeferred(ctx context.Context) error {
	if r.deferred == nil {
		return nil
	}
	if err := r.deferred.flush(); err != nil {
		return spoolErr(err)
	}
	i, _ := snapshot.EntityIndex(pifu.EntityMembership)
	var buf []byte
	n := 0
	return r.deferred.forward(true, func(fr frame) error {
		if n++; n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("diff: export %s: %w", r.in.ExportID, err)
			}
		}
		g, m, ok := splitMembershipKey(fr.key)
		if !ok {
			return spoolErr(fmt.Errorf("deferred membership key %q has no group and member", fr.key)) // unreachable: Membership.Key
		}
		idtype := ""
		if fr.content == 1 {
			idtype = pifu.IDTypeGroup
		}
		marks := pifu.MarksIn(r.seenSoFar, g, m, idtype)
		r.findings.count(marks)
		buf = snapshot.WithIncomplete(buf[:0], fr.object, marks)
		pos, old, found := r.prev.Lookup(i, fr.keyHash)
		return r.place(i, pifu.EntityMembership, fr.keyHash, fr.key, pos, old, found, xxhash.Sum64(buf), buf)
	})
}

// splitMembershipKey is the group and member keys of a membership key
// (pifu.Membership.Key): sourcedid keys are path-escaped, so they hold no
// "|".
func splitMembershipKey(key string) (group, member string, ok bool) {
	group, rest, ok1 := strings.Cut(key, "|")
	member, _, ok2 := strings.Cut(rest, "|")
	return group, member, ok1 && ok2
}

// previousMarks marks a membership of the previous export as it was marked
// when that export was the new one: by the previous snapshot, which holds
// exactly the records of that document.
func (r *run) previousMarks(m *pifu.Membership) []string {
	return pifu.MarksIn(r.inPrev, m.Group.Key(), m.Member.Key(), m.IDType)
}

// previousContent is Hasher.Content of a record of the previous export, a
// membership marked as it was then (previousMarks). When the marked content
// is not want, it is the unmarked one: a snapshot stored before memberships
// were marked has them unmarked.
func (r *run) previousContent(rec pifu.Record, want uint64) (uint64, []byte, error) {
	m := rec.Membership
	if m == nil {
		return r.h.Content(rec)
	}
	given := m.Incomplete
	defer func() { m.Incomplete = given }()
	m.Incomplete = r.previousMarks(m)
	ch, obj, err := r.h.Content(rec)
	if err == nil && ch != want && len(m.Incomplete) > 0 {
		m.Incomplete = nil
		ch, obj, err = r.h.Content(rec)
	}
	return ch, obj, err
}
