// Package messages defines what travels on the bus: export jobs, fetched
// exports, change events and their export boundaries, dead letters and quota
// alerts; the subjects they travel on; and the one codec that turns them
// into NATS messages and watermill messages and back.
//
// Every message is a CloudEvents 1.0 event in binary mode: its attributes
// are NATS headers (ce-specversion, ce-id, ce-source, ce-type, ce-subject,
// ce-time, ce-dataschema), its body is JSON. The ce-type names the type and
// its major version (no.skolebuss.person.updated.v1); a message of a type or
// version this build does not know, or whose body does not decode, is a
// failure.Permanent error, so it goes to the dead-letter stream instead of
// coming back forever. Every message also carries Nats-Msg-Id, a
// deterministic key, so a redo after a crash is deduplicated by JetStream.
//
// The contract is this package with one part elsewhere: the reason codes of
// dead letters (DeadLetter.Reason) and of the stages' metrics are the set of
// internal/failure, where every classified error gets its reason.
//
// Subject tokens (tenant ids, application names, stages) are validated, never
// escaped: a token with a dot, a wildcard, white space, a control character,
// or more than 64 bytes is refused with ErrInvalidToken.
//
// Everything in this package is safe for concurrent use; values are plain
// data.
package messages
