package vendorkit

import (
	"bytes"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// fastChange decodes a change event whose body has exactly the form
// skolebuss writes ({"tenant":..,"export_id":..,"object":{..}[,"previous":{..}]},
// strings without escapes) without reflection: the kit's hot path. It
// reports false for anything else, which Decode then reads the general way.
// subj is the parsed subject.
func fastChange(ev *Event, subj messages.LMSSubject, m *nats.Msg) bool {
	if m.Header.Get(messages.HeaderSpecVersion) != messages.SpecVersion ||
		m.Header.Get(messages.HeaderType) != messages.EventType(subj.Entity, subj.Op) {
		return false
	}
	b := m.Data
	tenant, b, ok := field(b, `{"tenant":`)
	if !ok || tenant != subj.Tenant {
		return false
	}
	exportID, b, ok := field(b, `,"export_id":`)
	if !ok || exportID == "" {
		return false
	}
	object, b, ok := objectField(b, `,"object":`)
	if !ok {
		return false
	}
	var previous []byte
	if len(b) > 1 {
		if previous, b, ok = objectField(b, `,"previous":`); !ok {
			return false
		}
	}
	if len(b) != 1 || b[0] != '}' {
		return false
	}
	if (subj.Op == messages.OpUpdated) != (previous != nil) {
		return false
	}
	key := m.Header.Get(messages.HeaderSubject)
	tm, err := time.Parse(time.RFC3339Nano, m.Header.Get(messages.HeaderTime))
	if err != nil || key == "" || ev.ID == "" {
		return false
	}
	ev.Kind, ev.Time = KindChange, tm
	ev.Change = &Change{ExportID: exportID, Entity: string(subj.Entity), Op: string(subj.Op), Key: key,
		Object: object, Previous: previous, Mix: RecordMix(string(subj.Entity), key, object)}
	return true
}

// field reads name (the literal text before the value, such as
// `,"export_id":`) and a JSON string without escapes.
func field(b []byte, name string) (string, []byte, bool) {
	if !bytes.HasPrefix(b, []byte(name)) {
		return "", nil, false
	}
	b = b[len(name):]
	if len(b) < 2 || b[0] != '"' {
		return "", nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", nil, false
	}
	s := b[1 : 1+end]
	if bytes.IndexByte(s, '\\') >= 0 {
		return "", nil, false
	}
	for _, c := range s {
		if c < 0x20 {
			return "", nil, false
		}
	}
	return string(s), b[end+2:], true
}

// objectField reads name and a JSON object, returned as it is (the bytes
// up to its matching brace, outside strings).
func objectField(b []byte, name string) ([]byte, []byte, bool) {
	if !bytes.HasPrefix(b, []byte(name)) {
		return nil, nil, false
	}
	b = b[len(name):]
	if len(b) == 0 || b[0] != '{' {
		return nil, nil, false
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				if c != '}' {
					return nil, nil, false
				}
				return b[: i+1 : i+1], b[i+1:], true
			}
		}
	}
	return nil, nil, false
}
