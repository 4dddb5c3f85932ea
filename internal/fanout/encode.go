package fanout

import (
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// vendorEncoder encodes one vendor's copies of the change events of one
// export of one tenant: the messages messages.Encode makes of them, on the
// vendor's subjects, with what the events share formatted once
// (messages.EventEncoder) instead of once an event.
type vendorEncoder struct {
	vendor, tenant, exportID string
	enc                      *messages.EventEncoder // of the time t
	t                        time.Time
	subjects                 map[[2]string]string // (entity, op) -> the vendor's subject
}

func newVendorEncoder(vendor, tenant, exportID string) *vendorEncoder {
	return &vendorEncoder{vendor: vendor, tenant: tenant, exportID: exportID, subjects: map[[2]string]string{}}
}

// encode is the vendor's copy of the canonical change ev projected to ch.
func (e *vendorEncoder) encode(ev *change, ch projection.Change) (*nats.Msg, error) {
	if e.enc == nil || !ev.time.Equal(e.t) {
		// The events of an export share their time; one that does not
		// gets an encoder of its own.
		enc, err := messages.NewEventEncoder(e.tenant, e.exportID, ev.time, nil)
		if err != nil {
			return nil, err
		}
		e.enc, e.t = enc, ev.time
	}
	m, err := e.enc.Encode(messages.Event{ID: VendorEventID(ev.id, e.vendor), Tenant: e.tenant, ExportID: e.exportID,
		Entity: ev.entity, Op: ch.Op, Key: ev.key, Time: e.t, Object: ch.Object, Previous: ch.Previous})
	if err != nil {
		return nil, err
	}
	if m.Subject, err = e.subject(ev.entity, ch.Op); err != nil {
		return nil, err
	}
	return m, nil
}

func (e *vendorEncoder) subject(ent pifu.Entity, op messages.Op) (string, error) {
	k := [2]string{string(ent), string(op)}
	if s, ok := e.subjects[k]; ok {
		return s, nil
	}
	s, err := messages.VendorEventSubject(e.vendor, e.tenant, ent, op)
	if err != nil {
		return "", err
	}
	e.subjects[k] = s
	return s, nil
}
