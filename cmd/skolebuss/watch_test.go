package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/config"
)

// watch --vendor names a vendor of the configuration; another is refused
// before any connection, with the vendors it could have named.
func TestWatchRefusesAnUnknownVendor(t *testing.T) {
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"watch", "--vendor", "nobody", "--nats-url", "nats://127.0.0.1:1"}, &out, &errs)
	if code != 2 || !strings.Contains(errs.String(), `--vendor "nobody"`) || !strings.Contains(errs.String(), config.DemoVendorContact) {
		t.Fatalf("exit %d, stderr %q; want 2 naming the vendor and the known ones", code, errs.String())
	}
	if strings.Contains(errs.String(), "connect") {
		t.Errorf("the unknown vendor was found out only after connecting: %q", errs.String())
	}
}
