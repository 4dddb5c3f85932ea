package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString: every string is appended byte for byte as json.Marshal
// writes it (every escape, HTML characters, invalid UTF-8 as U+FFFD, the
// line and paragraph separators). The seeds run in every `go test`.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "a", "Åse Ødegård", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr",
		"\b\f\x00\x01\x1f\x7f", "bad \xff utf-8 \xc3", "line\u2028para\u2029sep", "emoji 🚌 and 中文",
		"https://skole.example/?a=1&b=<2>", "trailing \xe2\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendString([]byte("prefix"), s); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got[len("prefix"):], want)
		}
	})
}
