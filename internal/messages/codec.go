package messages

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// CloudEvents attributes in binary mode, and the other headers every message
// carries. Header names are case-sensitive in NATS and written as here.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderSubject     = "ce-subject"
	HeaderTime        = "ce-time"
	HeaderDataSchema  = "ce-dataschema"
	HeaderContentType = "content-type"
	// HeaderMsgID is JetStream's deduplication header (nats.MsgIdHdr).
	HeaderMsgID = nats.MsgIdHdr
	// HeaderTraceparent is the W3C trace context, set by internal/telemetry.
	HeaderTraceparent = "traceparent"

	SpecVersion = "1.0"
	ContentJSON = "application/json"
)

// The type and version of every message is its ce-type: a name under
// no.skolebuss and a major version suffix ".vN". A breaking change is a new
// version, published beside the old one.
const (
	typePrefix         = "no.skolebuss."
	TypeExportJob      = typePrefix + "internal.job.v1"
	TypeFetchedExport  = typePrefix + "internal.fetched.v1"
	TypeDeadLetter     = typePrefix + "internal.deadletter.v1"
	TypeQuotaAlert     = typePrefix + "alert.quota.v1"
	TypeExportStarted  = typePrefix + "export.started.v1"
	TypeExportComplete = typePrefix + "export.completed.v1"
)

// SchemaBase prefixes the ce-dataschema of vendor-facing events; the rest is
// the file name under docs/schemas.
const SchemaBase = "https://skolebuss.no/schemas/"

// EventType is the ce-type of a change event: no.skolebuss.<entity>.<op>.v1.
func EventType(e pifu.Entity, op Op) string {
	return typePrefix + string(e) + "." + string(op) + ".v1"
}

// SchemaURI is the ce-dataschema of an event type: SchemaBase + <type>.json.
func SchemaURI(ceType string) string { return SchemaBase + ceType + ".json" }

// Codable is implemented by the message types of this package only:
// ExportJob, FetchedExport, Event, Boundary, DeadLetter, QuotaAlert,
// TenantUnlinked.
type Codable interface {
	envelope() (envelope, error)
}

// envelope is one message before it becomes a *nats.Msg or a watermill
// message.
type envelope struct {
	subject    string // NATS subject
	ceType     string
	id         string
	source     string
	ceSubject  string
	dataSchema string
	time       time.Time
	msgID      string
	data       []byte
}

// getter reads one header or metadata value.
type getter interface{ Get(string) string }

// decoder is implemented by pointers to the message types.
type decoder interface {
	decode(ceType string, h getter, data []byte) error
}

// Encode turns v into a message ready for JetStream: subject, CloudEvents
// headers (with the type and version in ce-type), Nats-Msg-Id for
// deduplication, and the JSON body. It validates v first: a message that
// would not decode on the other side is never sent. Trace context is added
// by the caller (internal/telemetry) to the returned header.
func Encode(v Codable) (*nats.Msg, error) {
	env, err := v.envelope()
	if err != nil {
		return nil, err
	}
	h := make(nats.Header, 10)
	env.each(func(k, val string) { h[k] = []string{val} })
	return &nats.Msg{Subject: env.subject, Header: h, Data: env.data}, nil
}

// EncodeWatermill is Encode for watermill: the topic to publish to (the NATS
// subject) and a message whose UUID is the ce-id and whose metadata holds
// the same headers, Nats-Msg-Id included, so watermill-nats publishers keep
// the deterministic deduplication.
func EncodeWatermill(v Codable) (topic string, m *message.Message, err error) {
	env, err := v.envelope()
	if err != nil {
		return "", nil, err
	}
	m = message.NewMessage(env.id, env.data)
	env.each(func(k, val string) { m.Metadata[k] = val })
	return env.subject, m, nil
}

func (e *envelope) each(set func(k, v string)) {
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, e.id)
	set(HeaderSource, e.source)
	set(HeaderType, e.ceType)
	if e.ceSubject != "" {
		set(HeaderSubject, e.ceSubject)
	}
	set(HeaderTime, e.time.UTC().Format(time.RFC3339Nano))
	if e.dataSchema != "" {
		set(HeaderDataSchema, e.dataSchema)
	}
	set(HeaderContentType, ContentJSON)
	if e.msgID != "" {
		set(HeaderMsgID, e.msgID)
	}
}

// Decode reads a message of type T (ExportJob, FetchedExport, Event,
// Boundary, DeadLetter, QuotaAlert or TenantUnlinked) from m. A message without CloudEvents
// 1.0 headers, of an unknown or unexpected type or version, with a body that
// does not decode or a value that does not validate is a failure.Permanent
// error: retrying it cannot help, it belongs in the dead-letter stream.
func Decode[T any, P interface {
	*T
	decoder
}](m *nats.Msg) (T, error) {
	var v T
	if m == nil {
		return v, failure.Permanentf(failure.ReasonEmptyMessage, "no message")
	}
	err := decodeInto(P(&v), m.Header, m.Data)
	return v, err
}

// DecodeWatermill is Decode for a watermill message: its metadata stands for
// the headers and its payload for the data.
func DecodeWatermill[T any, P interface {
	*T
	decoder
}](m *message.Message) (T, error) {
	var v T
	if m == nil {
		return v, failure.Permanentf(failure.ReasonEmptyMessage, "no message")
	}
	err := decodeInto(P(&v), m.Metadata, m.Payload)
	return v, err
}

func decodeInto(d decoder, h getter, data []byte) error {
	if sv := h.Get(HeaderSpecVersion); sv != SpecVersion {
		return failure.Permanentf(failure.ReasonUnknownMessageType, "%s is %q, want %q", HeaderSpecVersion, sv, SpecVersion)
	}
	t := h.Get(HeaderType)
	if _, _, err := ParseType(t); err != nil {
		return err
	}
	return d.decode(t, h, data)
}

// ParseType splits a ce-type into its name (without the no.skolebuss.
// prefix) and major version. Anything else than a type this code knows, in
// a version it knows, is a failure.Permanent error with reason
// "unknown_message_type" or "unknown_message_version".
func ParseType(ceType string) (name string, version int, err error) {
	rest, ok := strings.CutPrefix(ceType, typePrefix)
	i := strings.LastIndex(rest, ".v")
	if !ok || i < 0 {
		return "", 0, failure.Permanentf(failure.ReasonUnknownMessageType, "ce-type %q is not a skolebuss type", ceType)
	}
	name = rest[:i]
	version, convErr := strconv.Atoi(rest[i+2:])
	if convErr != nil || version < 1 {
		return "", 0, failure.Permanentf(failure.ReasonUnknownMessageType, "ce-type %q has no version", ceType)
	}
	if !knownName(name) {
		return "", 0, failure.Permanentf(failure.ReasonUnknownMessageType, "ce-type %q is unknown", ceType)
	}
	if version != 1 {
		return "", 0, failure.Permanentf(failure.ReasonUnknownMessageVersion, "ce-type %q: version %d is unknown (this build reads v1)", ceType, version)
	}
	return name, version, nil
}

func knownName(name string) bool {
	switch name {
	case "internal.job", "internal.fetched", "internal.deadletter", "alert.quota", "export.started", "export.completed",
		"tenant.unlinked":
		return true
	}
	e, op, ok := strings.Cut(name, ".")
	return ok && ValidEntity(pifu.Entity(e)) && Op(op).Valid()
}

func unexpected(want, got string) error {
	return failure.Permanentf(failure.ReasonUnexpectedMessageType, "want ce-type %s, got %s", want, got)
}

func undecodable(ceType string, err error) error {
	return failure.New(failure.Permanent, failure.ReasonUndecodableMessage, fmt.Errorf("decode %s: %w", ceType, err))
}

func invalid(err error) error {
	return failure.New(failure.Permanent, failure.ReasonInvalidMessage, err)
}

// decodeJSON decodes a body strictly: unknown fields are allowed (a newer
// minor version may add some), trailing data is not.
func decodeJSON(ceType string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return undecodable(ceType, err)
	}
	return nil
}
