package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A vendor asks for a tenant's full current state with a core NATS request
// on vendorreq.<vendor>.resync.<tenant> (body ResyncRequest, or empty); the
// fan-out answers on the request's reply subject with a ResyncReply. The
// vendor is the one the subject names, never one the body could name.

// ResyncRequestFilter matches every vendor's resync requests: the subject
// the fan-out subscribes to.
const ResyncRequestFilter = "vendorreq.*.resync.*"

// MaxResyncReason is the longest reason a resync request may give, in bytes.
const MaxResyncReason = 200

// ResyncRequestSubject is vendorreq.<vendor>.resync.<tenant>.
func ResyncRequestSubject(vendor, tenant string) (string, error) {
	if err := ValidateVendor(vendor); err != nil {
		return "", err
	}
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "vendorreq." + vendor + ".resync." + tenant, nil
}

// ParseResyncRequestSubject parses vendorreq.<vendor>.resync.<tenant> and
// returns the vendor and the tenant; any other subject is
// ErrInvalidSubject.
func ParseResyncRequestSubject(s string) (vendor, tenant string, err error) {
	p, err := split(s, []string{"vendorreq", "", "resync"}, 4)
	if err != nil {
		return "", "", err
	}
	if err := ValidateVendor(p[1]); err != nil {
		return "", "", wrapSubject(s, err)
	}
	if err := ValidateTenant(p[3]); err != nil {
		return "", "", wrapSubject(s, err)
	}
	return p[1], p[3], nil
}

// ResyncRequest is the body of a resync request (docs/schemas/
// no.skolebuss.resync.request.v1.json). An empty body is a request without
// a reason.
type ResyncRequest struct {
	// Reason is free text for the operator's log: at most MaxResyncReason
	// bytes of UTF-8. Optional.
	Reason string `json:"reason,omitempty"`
}

// Validate reports a reason that is too long or not UTF-8.
func (r ResyncRequest) Validate() error {
	if len(r.Reason) > MaxResyncReason {
		return fmt.Errorf("resync request: reason is %d bytes long, at most %d allowed", len(r.Reason), MaxResyncReason)
	}
	if !utf8.ValidString(r.Reason) {
		return errors.New("resync request: reason is not valid UTF-8")
	}
	return nil
}

// ParseResyncRequest decodes and validates a request body: empty, or one
// JSON object with at most the field "reason". Invalid UTF-8 anywhere in the
// body is refused (encoding/json would replace it silently).
func ParseResyncRequest(body []byte) (ResyncRequest, error) {
	var r ResyncRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return r, nil
	}
	if !utf8.Valid(body) {
		return r, errors.New("resync request: the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return ResyncRequest{}, fmt.Errorf("resync request: the body is not {\"reason\": \"...\"}: %w", err)
	}
	if dec.More() {
		return ResyncRequest{}, errors.New("resync request: the body has more than one JSON value")
	}
	if err := r.Validate(); err != nil {
		return ResyncRequest{}, err
	}
	return r, nil
}

// ResyncReply is the fan-out's answer to a resync request (docs/schemas/
// no.skolebuss.resync.reply.v1.json): accepted with the resync's id when the
// resync is stored to be done (a fan-out that restarts still does it), or
// refused with the reason.
type ResyncReply struct {
	Accepted bool   `json:"accepted"`
	ResyncID string `json:"resync_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Validate reports a reply that is neither accepted with an id nor refused
// with an error.
func (r ResyncReply) Validate() error {
	switch {
	case r.Accepted && (r.ResyncID == "" || r.Error != ""):
		return errors.New("resync reply: an accepted reply has a resync_id and no error")
	case !r.Accepted && (r.Error == "" || r.ResyncID != ""):
		return errors.New("resync reply: a refusal has an error and no resync_id")
	}
	return nil
}
