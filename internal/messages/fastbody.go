package messages

import (
	"bytes"
	"unicode/utf8"
)

// fastEventBody decodes the body of a change event without reflection when
// it has exactly the form appendBody writes:
// {"tenant":"..","export_id":"..","object":{..}[,"previous":{..}]}, the two
// strings without escapes or control characters and in valid UTF-8, object
// and previous valid JSON objects. It reports false for anything else, which
// the caller then decodes with encoding/json; what it accepts, it decodes to
// the values encoding/json gives (object and previous copied, as
// json.RawMessage is). The fan-out decodes every event of an export this
// way before any vendor can publish.
func fastEventBody(data []byte, body *eventBody) bool {
	b := data
	tenant, b, ok := plainField(b, `{"tenant":`)
	if !ok {
		return false
	}
	exportID, b, ok := plainField(b, `,"export_id":`)
	if !ok {
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
	// One allocation for both raw values, as they are held together.
	raw := make([]byte, 0, len(object)+len(previous))
	raw = append(append(raw, object...), previous...)
	*body = eventBody{Tenant: tenant, ExportID: exportID, Object: raw[:len(object):len(object)]}
	if previous != nil {
		body.Previous = raw[len(object):]
	}
	return true
}

// plainField reads name (the literal text before the value, such as
// `,"export_id":`) and a JSON string without escapes or control characters,
// in valid UTF-8 (encoding/json would replace invalid bytes).
func plainField(b []byte, name string) (string, []byte, bool) {
	if !bytes.HasPrefix(b, []byte(name)) {
		return "", nil, false
	}
	b = b[len(name):]
	if len(b) < 2 || b[0] != '"' {
		return "", nil, false
	}
	ascii := true
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s := b[1:i]
			if !ascii && !utf8.Valid(s) {
				return "", nil, false
			}
			return string(s), b[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", nil, false
}

// objectField reads name and a JSON object, which must be valid JSON; the
// object is returned as it is written.
func objectField(b []byte, name string) ([]byte, []byte, bool) {
	if !bytes.HasPrefix(b, []byte(name)) {
		return nil, nil, false
	}
	b = b[len(name):]
	if len(b) == 0 || b[0] != '{' {
		return nil, nil, false
	}
	end, ok := skipValue(b, 0, 0)
	if !ok {
		return nil, nil, false
	}
	return b[:end:end], b[end:], true
}

// maxDepth bounds the nesting skipValue follows; deeper values are left to
// encoding/json.
const maxDepth = 200

// skipValue checks the JSON value starting at b[i] (after no whitespace)
// and returns the index just past it. It follows the JSON grammar as
// encoding/json's scanner does: strings may hold any byte but control
// characters (their UTF-8 is not checked), escapes are the eight of
// RFC 8259 and \uXXXX.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return 0, false
			}
			var ok bool
			if i, ok = skipString(b, i); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return 0, false
			}
			if i, ok = skipValue(b, skipSpace(b, i+1), depth+1); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case '}':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case ',':
				i = skipSpace(b, i+1)
			case ']':
				return i + 1, true
			default:
				return 0, false
			}
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

// skipString checks the string starting at the quote b[i].
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, false
					}
				}
				i += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
