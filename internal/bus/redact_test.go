package bus

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://fetcher:s3cret@n1:4222,nats://n2:4222": "nats://[redacted]@n1:4222,nats://n2:4222",
		"nats://n1:4222,tls://op:pw2@n2:4222":          "nats://n1:4222,tls://[redacted]@n2:4222",
		"nats://sometoken@n1:4222":                     "nats://[redacted]@n1:4222",
		"user:pw@n1:4222":                              "[redacted]@n1:4222",
		"nats://127.0.0.1:4222":                        "nats://127.0.0.1:4222",
	} {
		got := RedactURL(in)
		if got != want || strings.Contains(got, "s3cret") || strings.Contains(got, "pw") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
