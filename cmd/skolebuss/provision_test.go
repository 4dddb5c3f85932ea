package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
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
		path := filepath.Join(dir, "skolebuss.yaml")
		yaml := fmt.Sprintf(`environment: sandbox
upstream: {token_url: "http://127.0.0.1:8765/connect/token", api_base: "http://127.0.0.1:8765"}
applications:
  - {name: skolebuss-demo, client_id: skolebuss-demo, client_secret_env: NOT_SET_ANYWHERE, scopes: [vfsapi:lmsexport]}
tenants:
  - {id: %s, name: Fjordvik, application: skolebuss-demo}
nats: {url: %q, duplicate_window: %s}
`, opsTenant, s.ClientURL(), window)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
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
