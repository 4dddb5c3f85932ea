package auth

import (
	"fmt"
	"log/slog"
)

// redacted is what every printed form of a Secret shows.
const redacted = "[redacted]"

// Secret holds a credential (a client secret or an access token). Every way
// of printing it — String, GoString, fmt verbs (%v, %+v, %#v, %s, %q, %x),
// JSON and slog — shows "[redacted]"; only Reveal gives the value, and only
// the code that puts it on the wire calls Reveal.
type Secret string

// Reveal returns the secret value. Call it only to send the secret.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

func (Secret) String() string   { return redacted }
func (Secret) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON encodes the secret as the string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps the secret out of YAML, XML and text encodings too.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

var (
	_ fmt.Stringer   = Secret("")
	_ fmt.GoStringer = Secret("")
	_ fmt.Formatter  = Secret("")
	_ slog.LogValuer = Secret("")
)
