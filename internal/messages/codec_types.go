package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/jsonenc"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

func tenantSource(tenant string) string { return "/skolebuss/tenants/" + tenant }

func (j ExportJob) envelope() (envelope, error) {
	if err := j.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := JobSubject(j.Tenant)
	data, err := json.Marshal(j)
	if err != nil {
		return envelope{}, err
	}
	return envelope{subject: subj, ceType: TypeExportJob, id: j.JobID, source: "/skolebuss/requester",
		ceSubject: j.Tenant, time: j.RequestedAt, msgID: j.DedupKey(), data: data}, nil
}

func (j *ExportJob) decode(t string, _ getter, data []byte) error {
	if t != TypeExportJob {
		return unexpected(TypeExportJob, t)
	}
	if err := decodeJSON(t, data, j); err != nil {
		return err
	}
	if err := j.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

func (f FetchedExport) envelope() (envelope, error) {
	if err := f.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := FetchedSubject(f.Tenant)
	data, err := json.Marshal(f)
	if err != nil {
		return envelope{}, err
	}
	return envelope{subject: subj, ceType: TypeFetchedExport, id: f.ExportID, source: "/skolebuss/fetcher",
		ceSubject: f.Tenant, time: f.FetchedAt, msgID: f.DedupKey(), data: data}, nil
}

func (f *FetchedExport) decode(t string, _ getter, data []byte) error {
	if t != TypeFetchedExport {
		return unexpected(TypeFetchedExport, t)
	}
	if err := decodeJSON(t, data, f); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

func (e Event) envelope() (envelope, error) {
	if err := e.Validate(); err != nil {
		return envelope{}, err
	}
	// Validate looks at the first byte only; the body is written around
	// Object and Previous as they are, so they must be whole JSON for the
	// message to decode. (EventEncoder, the publisher's hot path, takes
	// the diff's own canonical JSON and leaves this scan out.)
	if !json.Valid(e.Object) {
		return envelope{}, fmt.Errorf("event %s: object is not valid JSON", e.ID)
	}
	if len(e.Previous) > 0 && !json.Valid(e.Previous) {
		return envelope{}, fmt.Errorf("event %s: previous is not valid JSON", e.ID)
	}
	// A reader gets the value without the white space around it, and a
	// vendor's checksum covers the object's bytes as it reads them.
	if spaced(e.Object) || spaced(e.Previous) {
		return envelope{}, fmt.Errorf("event %s: object or previous has white space around its JSON value", e.ID)
	}
	subj, _ := EventSubject(e.Tenant, e.Entity, e.Op)
	t := e.Type()
	return envelope{subject: subj, ceType: t, id: e.ID, source: tenantSource(e.Tenant), ceSubject: e.Key,
		dataSchema: SchemaURI(t), time: e.Time, msgID: e.ID, data: e.appendBody(nil)}, nil
}

// appendBody writes {"tenant","export_id","object","previous"} without
// reflection: the publisher encodes hundreds of thousands of these per export.
func (e Event) appendBody(b []byte) []byte {
	b = make([]byte, 0, 48+len(e.Tenant)+len(e.ExportID)+len(e.Object)+len(e.Previous))
	b = append(b, `{"tenant":`...)
	b = jsonenc.AppendString(b, e.Tenant)
	b = append(b, `,"export_id":`...)
	b = jsonenc.AppendString(b, e.ExportID)
	b = append(b, `,"object":`...)
	b = append(b, e.Object...)
	if len(e.Previous) > 0 {
		b = append(b, `,"previous":`...)
		b = append(b, e.Previous...)
	}
	return append(b, '}')
}

type eventBody struct {
	Tenant   string          `json:"tenant"`
	ExportID string          `json:"export_id"`
	Object   json.RawMessage `json:"object"`
	Previous json.RawMessage `json:"previous,omitempty"`
}

func (e *Event) decode(t string, h getter, data []byte) error {
	name, _, _ := ParseType(t)
	ent, op, _ := strings.Cut(name, ".")
	if !ValidEntity(pifu.Entity(ent)) || !Op(op).Valid() {
		return unexpected("no.skolebuss.<entity>.<op>.v1", t)
	}
	var body eventBody
	if !fastEventBody(data, &body) {
		if err := decodeJSON(t, data, &body); err != nil {
			return err
		}
	}
	tm, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return undecodable(t, err)
	}
	*e = Event{ID: h.Get(HeaderID), Tenant: body.Tenant, ExportID: body.ExportID, Entity: pifu.Entity(ent),
		Op: Op(op), Key: h.Get(HeaderSubject), Time: tm, Object: body.Object, Previous: body.Previous}
	if err := e.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

type boundaryBody struct {
	Tenant   string                 `json:"tenant"`
	ExportID string                 `json:"export_id"`
	Counts   map[pifu.Entity]Counts `json:"counts"`
	Checksum string                 `json:"checksum,omitempty"`
	Upstream *Upstream              `json:"upstream,omitempty"`
	Findings map[string]int         `json:"findings,omitempty"`
	Resync   bool                   `json:"resync,omitempty"`
}

func (b Boundary) envelope() (envelope, error) {
	if err := b.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := BoundarySubject(b.Tenant, b.Phase)
	counts := b.Counts
	if counts == nil {
		counts = map[pifu.Entity]Counts{}
	}
	data, err := json.Marshal(boundaryBody{Tenant: b.Tenant, ExportID: b.ExportID, Counts: counts, Checksum: b.Checksum, Upstream: b.Upstream,
		Findings: b.Findings, Resync: b.Resync})
	if err != nil {
		return envelope{}, err
	}
	t := b.Type()
	return envelope{subject: subj, ceType: t, id: b.ID, source: tenantSource(b.Tenant), ceSubject: b.ExportID,
		dataSchema: SchemaURI(t), time: b.Time, msgID: b.ID, data: data}, nil
}

func (b *Boundary) decode(t string, h getter, data []byte) error {
	var ph Phase
	switch t {
	case TypeExportStarted:
		ph = PhaseStarted
	case TypeExportComplete:
		ph = PhaseCompleted
	default:
		return unexpected(TypeExportStarted+" or "+TypeExportComplete, t)
	}
	var body boundaryBody
	if err := decodeJSON(t, data, &body); err != nil {
		return err
	}
	tm, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	if err != nil {
		return undecodable(t, err)
	}
	*b = Boundary{ID: h.Get(HeaderID), Tenant: body.Tenant, ExportID: body.ExportID, Phase: ph, Time: tm,
		Counts: body.Counts, Checksum: body.Checksum, Upstream: body.Upstream, Findings: body.Findings,
		Resync: body.Resync}
	if err := b.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

func (d DeadLetter) envelope() (envelope, error) {
	if err := d.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := DLQSubject(d.Stage, d.Tenant)
	data, err := json.Marshal(d)
	if err != nil {
		return envelope{}, err
	}
	return envelope{subject: subj, ceType: TypeDeadLetter, id: d.ID, source: "/skolebuss/" + d.Stage,
		ceSubject: d.Tenant, time: d.FailedAt, msgID: d.ID, data: data}, nil
}

func (d *DeadLetter) decode(t string, _ getter, data []byte) error {
	if t != TypeDeadLetter {
		return unexpected(TypeDeadLetter, t)
	}
	if err := decodeJSON(t, data, d); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

func (q QuotaAlert) envelope() (envelope, error) {
	if err := q.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := QuotaAlertSubject(q.Application)
	data, err := json.Marshal(q)
	if err != nil {
		return envelope{}, err
	}
	id := q.DedupKey()
	return envelope{subject: subj, ceType: TypeQuotaAlert, id: id, source: "/skolebuss/quota",
		ceSubject: q.Application, time: q.At, msgID: id, data: data}, nil
}

func (q *QuotaAlert) decode(t string, _ getter, data []byte) error {
	if t != TypeQuotaAlert {
		return unexpected(TypeQuotaAlert, t)
	}
	if err := decodeJSON(t, data, q); err != nil {
		return err
	}
	if q.Kind == "" {
		q.Kind = "threshold" // an alert written before alerts had kinds
	}
	if err := q.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

// NewDeadLetter builds the dead letter of a failed message: class and reason
// from failure.ClassOf and failure.ReasonOf, the error's text, and the
// message with every header that could hold a secret removed (see
// RedactHeaders). Its id is deterministic for (stage, failed message), so a
// stage that dead-letters the same message twice stores it once.
func NewDeadLetter(stage, tenant string, failed *nats.Msg, err error, attempts int, traceID string, at time.Time) DeadLetter {
	d := DeadLetter{Stage: stage, Tenant: tenant, Reason: failure.ReasonOf(err), Class: failure.ClassOf(err).String(),
		Attempts: attempts, TraceID: traceID, FailedAt: at}
	if err != nil {
		d.Error = err.Error()
	}
	h := sha256.New()
	h.Write([]byte(stage + "\x00"))
	if failed != nil {
		d.Message = FailedMsg{Subject: failed.Subject, Headers: RedactHeaders(failed.Header), Data: failed.Data}
		if id := failed.Header.Get(HeaderMsgID); id != "" {
			h.Write([]byte(id))
		} else if id := failed.Header.Get(HeaderID); id != "" {
			h.Write([]byte(id))
		} else {
			h.Write([]byte(failed.Subject + "\x00"))
			h.Write(failed.Data)
		}
	}
	d.ID = "dlq." + hex.EncodeToString(h.Sum(nil)[:16])
	return d
}

// RedactHeaders copies h without the headers that may carry a secret:
// Authorization, Cookie, and any name containing "secret", "token",
// "password", "credential" or "key" (case-insensitive; Nats-Msg-Id and the
// CloudEvents and trace headers are kept).
func RedactHeaders(h nats.Header) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		l := strings.ToLower(k)
		switch {
		case l == "authorization", l == "proxy-authorization", l == "cookie", l == "set-cookie":
			continue
		case strings.Contains(l, "secret"), strings.Contains(l, "token"), strings.Contains(l, "password"),
			strings.Contains(l, "passwd"), strings.Contains(l, "credential"), strings.Contains(l, "key"):
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// spaced reports whether a JSON value's bytes begin or end with JSON white
// space.
func spaced(b []byte) bool {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	return len(b) > 0 && (isSpace(b[0]) || isSpace(b[len(b)-1]))
}
