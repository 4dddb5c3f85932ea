package vendorkit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// The entities of the events, in the order a vendor can create them.
const (
	EntityOrg        = "org"        // a school owner or a school
	EntityGroup      = "group"      // a class, teaching group, grade level, ...
	EntityPerson     = "person"     // pupils, staff and guardians
	EntityMembership = "membership" // one group, member and role
)

// Entities lists the entities.
var Entities = []string{EntityOrg, EntityGroup, EntityPerson, EntityMembership}

// The operations of a change event.
const (
	OpCreated = "created"
	OpUpdated = "updated"
	OpDeleted = "deleted"
)

// Kind says what an Event is.
type Kind int

const (
	// KindChange: a record was created, updated or deleted (Event.Change).
	KindChange Kind = iota + 1
	// KindExportStarted: the events of an export follow (Event.Boundary).
	// With Boundary.Resync the store discards everything it holds of the
	// tenant.
	KindExportStarted
	// KindExportCompleted: the export is whole; Boundary says what the
	// tenant's state now is. The kit checks the store against it.
	KindExportCompleted
	// KindTenantUnlinked: the tenant no longer flows to the vendor; the
	// store drops everything of it.
	KindTenantUnlinked
	// KindUnknown: a message this version of the kit does not read (a newer
	// major version of an event, or one that does not decode). It changes
	// nothing; Event.Err says why. A change missed that way shows at the
	// next export.completed, and a resync repairs it.
	KindUnknown
)

func (k Kind) String() string {
	switch k {
	case KindChange:
		return "change"
	case KindExportStarted:
		return "export.started"
	case KindExportCompleted:
		return "export.completed"
	case KindTenantUnlinked:
		return "tenant.unlinked"
	case KindUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Event is one message of the vendor's stream, decoded.
type Event struct {
	// Seq is the message's sequence in the vendor's stream: the position a
	// store records once it has applied the event.
	Seq uint64
	// Subject, ID (the CloudEvents id), Type (the CloudEvents type, such as
	// no.skolebuss.person.updated.v1) and Time are the message's.
	Subject string
	ID      string
	Type    string
	Time    time.Time
	Tenant  string
	Kind    Kind
	// Change is set for KindChange, Boundary for the export boundaries.
	Change   *Change
	Boundary *Boundary
	// Err says why an event is KindUnknown.
	Err error
}

// Change is one change of one record.
type Change struct {
	ExportID string
	Entity   string // EntityOrg, EntityGroup, EntityPerson or EntityMembership
	Op       string // OpCreated, OpUpdated or OpDeleted
	// Key is the record's identity within its tenant and entity.
	Key string
	// Object is the record after the change (before it, for a deletion),
	// exactly as the event carried it: keep these bytes, the checksum is of
	// them. It may carry fields a newer minor version added.
	Object json.RawMessage
	// Previous holds, on updates, the previous values of the changed
	// top-level fields of Object.
	Previous json.RawMessage
	// Mix is the record's share of the tenant's checksum:
	// RecordMix(Entity, Key, Object). A store keeps it beside the record.
	Mix uint64
}

// Counts are the numbers of one entity in one export.
type Counts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
	// Total is the number of records of the entity after the export.
	Total int `json:"total"`
}

// Boundary is an export.started or export.completed.
type Boundary struct {
	ExportID string
	// Counts per entity; on export.completed, Total is what the store
	// must hold.
	Counts map[string]Counts
	// Checksum, on export.completed: "xxh64sum:" and 16 hex digits
	// (FormatChecksum).
	Checksum string
	// Resync is set on both boundaries of a resync: at its export.started
	// the store discards the tenant, and created events of its whole state
	// follow.
	Resync bool
	// Findings counts, by kind, what the export's document lacked (such as
	// "dangling-membership"); nil when nothing.
	Findings map[string]int
	// Upstream is what the upstream said of its API, on export.started;
	// nil when nothing.
	Upstream *Upstream
}

// Upstream is what the upstream announced about its API with an export.
type Upstream struct {
	APIVersion  string `json:"api_version,omitempty"`
	Deprecation string `json:"deprecation,omitempty"`
	Sunset      string `json:"sunset,omitempty"`
}

// boundaryBody is the JSON body of export.started and export.completed.
type boundaryBody struct {
	Tenant   string            `json:"tenant"`
	ExportID string            `json:"export_id"`
	Counts   map[string]Counts `json:"counts"`
	Checksum string            `json:"checksum,omitempty"`
	Resync   bool              `json:"resync,omitempty"`
	Findings map[string]int    `json:"findings,omitempty"`
	Upstream *Upstream         `json:"upstream,omitempty"`
}

// Decode decodes one message of vendor's stream; seq is its stream
// sequence. A message that is not an event this version reads (another
// vendor's subject, a subject or type it does not know, a body that does
// not decode) is KindUnknown with Err saying why.
func Decode(vendor string, seq uint64, m *nats.Msg) Event {
	ev := Event{Seq: seq, Subject: m.Subject, ID: m.Header.Get(messages.HeaderID), Type: m.Header.Get(messages.HeaderType)}
	if v, tenant, err := messages.ParseVendorUnlinkedSubject(m.Subject); err == nil {
		ev.Tenant = tenant
		if v != vendor {
			return unknown(ev, fmt.Errorf("%s is not a subject of vendor %s", m.Subject, vendor))
		}
		u, err := messages.Decode[messages.TenantUnlinked](m)
		if err == nil && (u.Tenant != tenant || u.Vendor != vendor) {
			err = fmt.Errorf("tenant.unlinked of %s/%s on subject %s", u.Vendor, u.Tenant, m.Subject)
		}
		if err != nil {
			return unknown(ev, err)
		}
		ev.Kind, ev.ID, ev.Time = KindTenantUnlinked, u.ID, u.Time
		return ev
	}
	v, subj, err := messages.ParseVendorSubject(m.Subject)
	if err != nil {
		return unknown(ev, err)
	}
	ev.Tenant = subj.Tenant
	if v != vendor {
		return unknown(ev, fmt.Errorf("%s is not a subject of vendor %s", m.Subject, vendor))
	}
	if subj.IsBoundary() {
		return decodeBoundary(ev, m)
	}
	if fastChange(&ev, subj, m) {
		return ev
	}
	e, err := messages.Decode[messages.Event](m)
	if err == nil && e.Tenant != subj.Tenant {
		err = fmt.Errorf("an event of tenant %s on subject %s", e.Tenant, m.Subject)
	}
	if err == nil && (e.Entity != subj.Entity || e.Op != subj.Op) {
		err = fmt.Errorf("a %s %s event on subject %s", e.Entity, e.Op, m.Subject)
	}
	if err != nil {
		return unknown(ev, err)
	}
	ev.Kind, ev.Time = KindChange, e.Time
	ev.Change = &Change{ExportID: e.ExportID, Entity: string(e.Entity), Op: string(e.Op), Key: e.Key,
		Object: e.Object, Previous: e.Previous, Mix: RecordMix(string(e.Entity), e.Key, e.Object)}
	return ev
}

func decodeBoundary(ev Event, m *nats.Msg) Event {
	// messages.Decode validates the envelope and the fields it knows; the
	// body is read again for the fields of later minor versions.
	b, err := messages.Decode[messages.Boundary](m)
	var body boundaryBody
	if err == nil {
		err = json.Unmarshal(m.Data, &body)
	}
	if err == nil && b.Tenant != ev.Tenant {
		err = fmt.Errorf("a boundary of tenant %s on subject %s", b.Tenant, m.Subject)
	}
	if err != nil {
		return unknown(ev, err)
	}
	ev.Time = b.Time
	ev.Kind = KindExportStarted
	if b.Phase == messages.PhaseCompleted {
		ev.Kind = KindExportCompleted
	}
	ev.Boundary = &Boundary{ExportID: body.ExportID, Counts: body.Counts, Checksum: body.Checksum, Resync: body.Resync,
		Findings: body.Findings, Upstream: body.Upstream}
	return ev
}

func unknown(ev Event, err error) Event {
	ev.Kind, ev.Err = KindUnknown, err
	return ev
}
