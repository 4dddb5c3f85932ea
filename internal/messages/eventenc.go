package messages

import (
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/jsonenc"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// EventEncoder encodes the change events of one export of one tenant into
// the very messages Encode makes (same subject, headers and body bytes), with
// the extra headers (the trace context) of the export added. What every
// event of the export shares (tenant, export id, time, source, the subject,
// type and schema of each entity and op, the start of the body) is validated
// and formatted once, in NewEventEncoder, instead of once an event: the
// publisher encodes hundreds of thousands of events an export.
//
// An EventEncoder is safe for concurrent use (it is read-only after
// NewEventEncoder). The messages it returns share their constant header
// values with each other: a caller may set or delete a header of one
// message, but must not modify a header value slice in place.
type EventEncoder struct {
	tenant, exportID string
	time             time.Time
	bodyStart        []byte // {"tenant":<tenant>,"export_id":<export id>,"object":
	spec, source     []string
	ceTime, ctype    []string
	extra            []headerValue
	kinds            [numEntities][numOps]eventKind
}

type headerValue struct {
	key string
	val []string
}

// eventKind is what the events of one entity and op share.
type eventKind struct {
	subject        string
	ceType, schema []string
}

const (
	numEntities = 4
	numOps      = 3
)

func entityIndex(e pifu.Entity) int {
	switch e {
	case pifu.EntityOrg:
		return 0
	case pifu.EntityGroup:
		return 1
	case pifu.EntityPerson:
		return 2
	case pifu.EntityMembership:
		return 3
	}
	return -1
}

func opIndex(op Op) int {
	switch op {
	case OpCreated:
		return 0
	case OpUpdated:
		return 1
	case OpDeleted:
		return 2
	}
	return -1
}

// NewEventEncoder returns the encoder of the events of export exportID of
// tenant, all with ce-time t, each with the headers of extra added (after
// the CloudEvents headers, so extra wins on a clash, as when a caller sets
// them on Encode's message). It fails as Encode would on an event with such
// a tenant, export id or time.
func NewEventEncoder(tenant, exportID string, t time.Time, extra nats.Header) (*EventEncoder, error) {
	switch {
	case exportID == "":
		return nil, fmt.Errorf("event encoder: export_id is empty")
	case t.IsZero():
		return nil, fmt.Errorf("event encoder: time is zero")
	}
	if err := ValidateTenant(tenant); err != nil {
		return nil, fmt.Errorf("event encoder: %w", err)
	}
	x := &EventEncoder{tenant: tenant, exportID: exportID, time: t,
		spec: []string{SpecVersion}, source: []string{tenantSource(tenant)},
		ceTime: []string{t.UTC().Format(time.RFC3339Nano)}, ctype: []string{ContentJSON}}
	b := append([]byte(nil), `{"tenant":`...)
	b = jsonenc.AppendString(b, tenant)
	b = append(b, `,"export_id":`...)
	b = jsonenc.AppendString(b, exportID)
	x.bodyStart = append(b, `,"object":`...)
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			subj, err := EventSubject(tenant, e, op)
			if err != nil {
				return nil, fmt.Errorf("event encoder: %w", err)
			}
			ct := EventType(e, op)
			x.kinds[entityIndex(e)][opIndex(op)] = eventKind{subject: subj, ceType: []string{ct}, schema: []string{SchemaURI(ct)}}
		}
	}
	for k, v := range extra {
		x.extra = append(x.extra, headerValue{key: k, val: slices.Clip(slices.Clone(v))})
	}
	return x, nil
}

// Encode is Encode(ev) with the encoder's extra headers added. The event's
// tenant, export id and time must be the encoder's.
func (x *EventEncoder) Encode(ev Event) (*nats.Msg, error) {
	m := new(nats.Msg)
	if err := x.EncodeTo(m, ev); err != nil {
		return nil, err
	}
	return m, nil
}

// EncodeTo is Encode into m. A message that EncodeTo of this encoder
// filled before is reused: its header map, its per-message header values
// and its data buffer are overwritten in place, without allocation. The
// caller must be done with it (for a publish, its acknowledgement received)
// and must not have changed its headers since. Any other message (a new
// one) gets a header map and data of its own. On error m is unchanged.
func (x *EventEncoder) EncodeTo(m *nats.Msg, ev Event) error {
	if err := ev.validateFields(); err != nil {
		return err
	}
	if ev.Tenant != x.tenant || ev.ExportID != x.exportID || !ev.Time.Equal(x.time) {
		return fmt.Errorf("event %s: tenant, export_id or time is not the encoder's", ev.ID)
	}
	k := &x.kinds[entityIndex(ev.Entity)][opIndex(ev.Op)]
	ids, keys, reuse := x.filled(m)
	data := m.Data[:0]
	if !reuse {
		data = make([]byte, 0, len(x.bodyStart)+len(ev.Object)+len(`,"previous":`)+len(ev.Previous)+1)
	}
	data = append(data, x.bodyStart...)
	data = append(data, ev.Object...)
	if len(ev.Previous) > 0 {
		data = append(data, `,"previous":`...)
		data = append(data, ev.Previous...)
	}
	data = append(data, '}')
	m.Subject, m.Data, m.Reply = k.subject, data, ""
	if reuse {
		ids[0] = ev.ID // the same slice as Nats-Msg-Id's
		keys[0] = ev.Key
		m.Header[HeaderType] = k.ceType
		m.Header[HeaderDataSchema] = k.schema
		return nil
	}
	id := []string{ev.ID}
	h := make(nats.Header, 9+len(x.extra))
	h[HeaderSpecVersion] = x.spec
	h[HeaderID] = id
	h[HeaderSource] = x.source
	h[HeaderType] = k.ceType
	h[HeaderSubject] = []string{ev.Key}
	h[HeaderTime] = x.ceTime
	h[HeaderDataSchema] = k.schema
	h[HeaderContentType] = x.ctype
	h[HeaderMsgID] = id
	for _, e := range x.extra {
		h[e.key] = e.val
	}
	m.Header = h
	return nil
}

// filled reports whether EncodeTo of x filled m, and returns its ce-id
// and ce-subject values: its header has x's own ce-source value (the same
// slice, not just the same text) and as many entries as x writes.
func (x *EventEncoder) filled(m *nats.Msg) (ids, keys []string, ok bool) {
	h := m.Header
	if len(h) != 9+len(x.extra) {
		return nil, nil, false
	}
	src := h[HeaderSource]
	if len(src) != 1 || &src[0] != &x.source[0] {
		return nil, nil, false
	}
	ids, keys = h[HeaderID], h[HeaderSubject]
	return ids, keys, len(ids) == 1 && len(keys) == 1
}
