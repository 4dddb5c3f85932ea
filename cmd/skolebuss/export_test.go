package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

const opsTenant = "aa750693-e3ea-441b-93fe-6a71a8371afa"

// opsBus starts an embedded, provisioned JetStream and writes a config that
// names it and one tenant.
func opsBus(t *testing.T) (*bus.Bus, string) {
	t.Helper()
	b := bustest.Open(t)
	cfg := writeOpsConfig(t, filepath.Join(t.TempDir(), "skolebuss.yaml"), fmt.Sprintf("{url: %q}", b.Conn.ConnectedUrl()), "", opsTenant)
	return b, cfg
}

// opsTenantNames name the tenants of writeOpsConfig, in order.
var opsTenantNames = []string{"Fjordvik", "Nordvik", "Sørvik"}

// writeOpsConfig writes to path, and returns it, the sandbox configuration
// of the operator commands' tests: the demo application, the tenants (named
// from opsTenantNames), the lines of more (a vendors: section, say), and
// nats as the nats: section.
func writeOpsConfig(t *testing.T, path, nats, more string, tenants ...string) string {
	t.Helper()
	if len(tenants) > len(opsTenantNames) {
		t.Fatalf("writeOpsConfig: %d tenants, names for %d", len(tenants), len(opsTenantNames))
	}
	var yaml strings.Builder
	yaml.WriteString(`environment: sandbox
upstream: {token_url: "http://127.0.0.1:8765/connect/token", api_base: "http://127.0.0.1:8765"}
applications:
  - {name: skolebuss-demo, client_id: skolebuss-demo, client_secret_env: NOT_SET_ANYWHERE, scopes: [vfsapi:lmsexport]}
tenants:
`)
	for i, id := range tenants {
		fmt.Fprintf(&yaml, "  - {id: %s, name: %s, application: skolebuss-demo}\n", id, opsTenantNames[i])
	}
	yaml.WriteString(more)
	fmt.Fprintf(&yaml, "nats: %s\n", nats)
	if err := os.WriteFile(path, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func jobCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestExport(t *testing.T) {
	b, cfg := opsBus(t)
	ctx := context.Background()
	var out, errs bytes.Buffer
	if code := run(ctx, []string{"export", "--config", cfg, "--tenant", opsTenant}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "requested: job demand-"+opsTenant) || !strings.Contains(out.String(), "trace ") {
		t.Errorf("output %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"export", "--config", cfg, "--tenant", opsTenant}, &out, &errs); code != 0 {
		t.Fatalf("second: exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "already requested") {
		t.Errorf("second request in the minute: %q", out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"export", "--config", cfg, "--tenant", opsTenant, "--id", "ops-1"}, &out, &errs); code != 0 {
		t.Fatalf("explicit id: exit %d: %s", code, errs.String())
	}
	if n := jobCount(t, b.JS); n != 2 {
		t.Errorf("%d jobs, want 2", n)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tenant", "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"}, "unknown tenant"},
		{[]string{"--tenant", "a.>"}, "invalid subject token"},
		{[]string{"--tenant", "*"}, "invalid subject token"},
		{[]string{"--tenant", "x y"}, "invalid subject token"},
		{[]string{"--tenant", opsTenant, "--id", "a.b"}, "--id"},
		{[]string{}, "--tenant is required"},
	} {
		errs.Reset()
		code := run(ctx, append([]string{"export", "--config", cfg}, c.args...), &out, &errs)
		if code != 2 || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", c.args, code, errs.String(), c.want)
		}
	}
	if n := jobCount(t, b.JS); n != 2 {
		t.Errorf("refused requests published: %d jobs", n)
	}
	errs.Reset()
	if code := run(ctx, []string{"export", "--config", cfg, "--tenant", "nobody"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), opsTenant) {
		t.Errorf("unknown tenant: exit %d, %q; want the known tenants listed", code, errs.String())
	}

	// No server: a clear error.
	errs.Reset()
	if code := run(ctx, []string{"export", "--config", cfg, "--tenant", opsTenant, "--nats-url", "nats://127.0.0.1:1"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "is the pipeline running") {
		t.Errorf("no server: exit %d, %q", code, errs.String())
	}
}
