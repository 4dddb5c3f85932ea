package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

// skolebuss provision creates every stream and store on an empty server,
// changes nothing when run again, and updates what the configuration
// changed.
func TestProvision(t *testing.T) {
	s := bustest.RunServer(t)
	dir := t.TempDir()
	writeCfg := func(window string) string {
		return writeOpsConfig(t, filepath.Join(dir, "skolebuss.yaml"), fmt.Sprintf("{url: %q, duplicate_window: %s}", s.ClientURL(), window), "", opsTenant)
	}
	provision := func(cfg string) map[string]string {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{"provision", "--config", cfg}, &out, &errs); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		done := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^(\S+)\s+(created|updated|unchanged)$`).FindAllStringSubmatch(out.String(), -1) {
			done[m[1]] = m[2]
		}
		if len(done) != len(bus.ProvisionedStreams(nil)) {
			t.Fatalf("provision printed %d streams, want %d:\n%s", len(done), len(bus.ProvisionedStreams(nil)), out.String())
		}
		return done
	}
	cfg := writeCfg("1h")
	for name, did := range provision(cfg) {
		if did != "created" {
			t.Errorf("first run: %s %s", name, did)
		}
	}
	for name, did := range provision(cfg) {
		if did != "unchanged" {
			t.Errorf("second run: %s %s", name, did)
		}
	}
	for name, did := range provision(writeCfg("2h")) {
		if want := map[bool]string{true: "updated", false: "unchanged"}[name == bus.StreamLMS || strings.HasPrefix(name, bus.VendorStreamPrefix)]; did != want {
			t.Errorf("after changing the duplicate window: %s %s, want %s", name, did, want)
		}
	}
}
