package snapshot

import (
	"io"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// Marked reads the records of r with each membership's Incomplete set as
// the diff sets it (pifu.MarksIn over the whole document), the reader's own
// value of it ignored. A membership whose group and person came before it is
// passed on at once; the others are held (in memory: Marked is for checks,
// tests and vendors verifying a copy, not for the publisher's hot path) and
// passed on, in document order, after r's last record, together with every
// later membership of the same key, so the first of records with one key is
// still the first. Marked copies a membership it marks; it never modifies
// r's records. The error ending r, other than io.EOF, is passed on at once.
func Marked(r RecordReader) RecordReader {
	return &marked{r: r, h: NewHasher(), seen: map[uint64]struct{}{}, heldKeys: map[uint64]struct{}{}}
}

type marked struct {
	r        RecordReader
	h        *Hasher
	seen     map[uint64]struct{} // key hashes of the persons, groups and orgs so far
	held     []pifu.Record
	heldKeys map[uint64]struct{}
	done     bool // r is at its end: held is being passed on
}

func (x *marked) has(e pifu.Entity, key string) bool {
	_, ok := x.seen[x.h.Key(e, key)]
	return ok
}

func (x *marked) Next() (pifu.Record, error) {
	for !x.done {
		rec, err := x.r.Next()
		if err == io.EOF {
			x.done = true
			break
		}
		if err != nil {
			return rec, err
		}
		m := rec.Membership
		if m == nil {
			x.seen[x.h.Key(rec.Entity(), rec.Key())] = struct{}{}
			return rec, nil
		}
		kh := x.h.Key(pifu.EntityMembership, m.Key())
		_, after := x.heldKeys[kh]
		groupSeen := x.has(pifu.EntityGroup, m.Group.Key()) || x.has(pifu.EntityOrg, m.Group.Key())
		memberSeen := m.IDType == pifu.IDTypeGroup || x.has(pifu.EntityPerson, m.Member.Key())
		if !after && groupSeen && memberSeen {
			return mark(rec, pifu.MarksIn(x.has, m.Group.Key(), m.Member.Key(), m.IDType)), nil
		}
		x.heldKeys[kh] = struct{}{}
		x.held = append(x.held, rec)
	}
	if len(x.held) == 0 {
		return pifu.Record{}, io.EOF
	}
	rec := x.held[0]
	x.held[0] = pifu.Record{}
	x.held = x.held[1:]
	m := rec.Membership
	return mark(rec, pifu.MarksIn(x.has, m.Group.Key(), m.Member.Key(), m.IDType)), nil
}

// mark is rec with a copy of its membership carrying marks; rec itself
// when its membership has them already (no marks, most often).
func mark(rec pifu.Record, marks []string) pifu.Record {
	if len(marks) == 0 && len(rec.Membership.Incomplete) == 0 {
		return rec
	}
	m := *rec.Membership
	m.Incomplete = marks
	rec.Membership = &m
	return rec
}
