package projection

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/skolebuss/skolebuss/internal/jsonenc"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Change is one canonical change as one vendor receives it.
type Change struct {
	// Op is what the vendor is told: the canonical op, or created (an
	// update that brings a record into the profile), or deleted (one that
	// takes it out); "" when nothing is sent.
	Op messages.Op
	// Object is the projected record's canonical JSON (snapshot's encoding,
	// the bytes json.Marshal writes): after the change, before it for a
	// deletion. It is valid until the next call of the Projector.
	Object []byte
	// Previous is, on updates, the JSON object of the top-level fields of
	// Object the vendor sees change, each with its previous projected value
	// (null for a field absent before), as the canonical event's previous is.
	Previous []byte
	// Content is the content hash of the record after the change (XXH64 of
	// Object; 0 for a deletion), and Old the content hash of the projected
	// record the change replaces (of an update or a deletion; 0 for a
	// creation). A vendor's checksum moves by snapshot.Mix(key hash,
	// Content) added unless the op is deleted, and Mix(key hash, Old) taken
	// away unless it is created.
	Content, Old uint64
}

// Sent reports whether the vendor receives the change.
func (c Change) Sent() bool { return c.Op != "" }

// Canonical is one canonical change decoded, to be projected to any number
// of profiles: decoding costs far more than projecting. It is read-only.
type Canonical struct {
	Op messages.Op
	// Record is the record after the change (before it, for a deletion).
	Record pifu.Record
	// Old is, on updates, the record before the change.
	Old pifu.Record
}

// Decode decodes one canonical change event of entity e: its op, its object
// and, for an update, its previous (the canonical event body's fields). The
// old record of an update is the object with previous laid over it.
func Decode(e pifu.Entity, op messages.Op, object, previous []byte) (Canonical, error) {
	if !op.Valid() {
		return Canonical{}, fmt.Errorf("projection: unknown op %q", op)
	}
	rec, err := decodeRecord(e, object)
	if err != nil {
		return Canonical{}, err
	}
	c := Canonical{Op: op, Record: rec}
	if op == messages.OpUpdated {
		if c.Old, err = overlay(e, object, previous); err != nil {
			return Canonical{}, err
		}
	}
	return c, nil
}

// Event is Decode and Change: one canonical change event projected.
func (p *Projector) Event(e pifu.Entity, op messages.Op, object, previous []byte) (Change, error) {
	c, err := Decode(e, op, object, previous)
	if err != nil {
		return Change{}, err
	}
	return p.Change(c)
}

// Change projects one decoded canonical change.
func (p *Projector) Change(c Canonical) (Change, error) {
	switch c.Op {
	case messages.OpCreated:
		return p.one(messages.OpCreated, c.Record, p.after)
	case messages.OpDeleted:
		ch, err := p.one(messages.OpDeleted, c.Record, p.before)
		ch.Old, ch.Content = ch.Content, 0
		return ch, err
	case messages.OpUpdated:
		return p.Update(c.Old, c.Record)
	}
	return Change{}, fmt.Errorf("projection: unknown op %q", c.Op)
}

func (p *Projector) one(op messages.Op, rec pifu.Record, rel Relations) (Change, error) {
	out, ok := p.project(rec, rel)
	if !ok {
		return Change{}, nil
	}
	b, h := p.encode(out)
	return Change{Op: op, Object: b, Content: h}, nil
}

// Update projects an update from old to rec: an update when the vendor sees
// a field change, a creation or a deletion when the record enters or
// leaves the profile, nothing otherwise.
func (p *Projector) Update(old, rec pifu.Record) (Change, error) {
	po, okOld := p.project(old, p.before)
	var oldJSON []byte
	var oldHash uint64
	if okOld {
		b, h := p.encode(po)
		oldJSON, oldHash = bytes.Clone(b), h
	}
	pn, okNew := p.project(rec, p.after)
	switch {
	case !okOld && !okNew:
		return Change{}, nil
	case !okNew:
		return Change{Op: messages.OpDeleted, Object: oldJSON, Old: oldHash}, nil
	}
	b, h := p.encode(pn)
	switch {
	case !okOld:
		return Change{Op: messages.OpCreated, Object: b, Content: h}, nil
	case bytes.Equal(b, oldJSON):
		return Change{}, nil
	}
	prev, err := previousOf(oldJSON, b)
	if err != nil {
		return Change{}, err
	}
	return Change{Op: messages.OpUpdated, Object: b, Previous: prev, Content: h, Old: oldHash}, nil
}

// encode is the record's canonical JSON and content hash, in the
// Projector's buffer.
func (p *Projector) encode(rec pifu.Record) ([]byte, uint64) {
	if p.hasher == nil {
		p.hasher = snapshot.NewHasher()
	}
	h, b, _ := p.hasher.Content(rec)
	return b, h
}

// decodeRecord decodes an event's object into the record type of e.
func decodeRecord(e pifu.Entity, object []byte) (pifu.Record, error) {
	var rec pifu.Record
	if fastRecord(e, object, &rec) {
		return rec, nil
	}
	return decodeRecordJSON(e, object)
}

// decodeRecordJSON is decodeRecord with encoding/json, for what fastRecord
// does not read.
func decodeRecordJSON(e pifu.Entity, object []byte) (pifu.Record, error) {
	var rec pifu.Record
	var err error
	switch e {
	case pifu.EntityPerson:
		rec.Person = new(pifu.Person)
		err = json.Unmarshal(object, rec.Person)
	case pifu.EntityOrg, pifu.EntityGroup:
		rec.Group = new(pifu.Group)
		err = json.Unmarshal(object, rec.Group)
	case pifu.EntityMembership:
		rec.Membership = new(pifu.Membership)
		err = json.Unmarshal(object, rec.Membership)
	default:
		return rec, fmt.Errorf("projection: unknown entity %q", e)
	}
	if err != nil {
		return pifu.Record{}, fmt.Errorf("projection: decode %s: %w", e, err)
	}
	return rec, nil
}

// overlay is the record before an update: object with the fields of
// previous laid over it, a null one removed.
func overlay(e pifu.Entity, object, previous []byte) (pifu.Record, error) {
	if rec, ok := fastOverlay(e, object, previous); ok {
		return rec, nil
	}
	return overlayJSON(e, object, previous)
}

// overlayJSON is overlay with encoding/json, for what fastOverlay does not
// read.
func overlayJSON(e pifu.Entity, object, previous []byte) (pifu.Record, error) {
	var fields, prev map[string]json.RawMessage
	if err := json.Unmarshal(object, &fields); err != nil {
		return pifu.Record{}, fmt.Errorf("projection: decode %s: %w", e, err)
	}
	if err := json.Unmarshal(previous, &prev); err != nil {
		return pifu.Record{}, fmt.Errorf("projection: decode previous of %s: %w", e, err)
	}
	for k, v := range prev {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(fields, k)
		} else {
			fields[k] = v
		}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return pifu.Record{}, fmt.Errorf("projection: %s before the update: %w", e, err)
	}
	return decodeRecordJSON(e, b)
}

// field is one top-level field of a JSON object.
type field struct {
	name string
	val  json.RawMessage
}

// fieldsOf splits a JSON object into its top-level fields, in order.
func fieldsOf(obj []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("projection: not a JSON object")
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{name, v})
	}
	return out, nil
}

// previousOf is the previous of an update from old to cur (both canonical
// JSON objects): every top-level field whose value differs, with its old
// value, null where old lacks it; in cur's field order, then the fields
// only old has.
func previousOf(old, cur []byte) ([]byte, error) {
	of, err := fieldsOf(old)
	if err != nil {
		return nil, err
	}
	cf, err := fieldsOf(cur)
	if err != nil {
		return nil, err
	}
	oldVal := make(map[string]json.RawMessage, len(of))
	for _, f := range of {
		oldVal[f.name] = f.val
	}
	inCur := make(map[string]bool, len(cf))
	b := []byte{'{'}
	add := func(name string, v []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, name)
		b = append(b, ':')
		b = append(b, v...)
	}
	for _, f := range cf {
		inCur[f.name] = true
		switch ov, ok := oldVal[f.name]; {
		case !ok:
			add(f.name, []byte("null"))
		case !bytes.Equal(ov, f.val):
			add(f.name, ov)
		}
	}
	for _, f := range of {
		if !inCur[f.name] {
			add(f.name, f.val)
		}
	}
	return append(b, '}'), nil
}
