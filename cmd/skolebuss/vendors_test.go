package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/natsauth"
)

// parseInAccount writes an account block of a nats-server configuration
// that includes users (a file beside it) and parses it with nats-server's
// own parser.
func parseInAccount(t *testing.T, users string) *server.Options {
	t.Helper()
	dir := filepath.Dir(users)
	conf := "accounts {\n  SKOLEBUSS {\n    jetstream: enabled\n    include ./" + filepath.Base(users) + "\n  }\n}\n"
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the written users: %v", err)
	}
	return o
}

// The users written for the demo's two vendors parse with nats-server
// inside an account, each with its password from its variable and the
// permissions natsauth gives a vendor.
func TestVendorsNATSConfigParsesWithNATSServer(t *testing.T) {
	t.Setenv("SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD", "pw-itslearning")
	t.Setenv("SKOLEBUSS_VENDOR_ROSTER_ONLY_DEMO_PASSWORD", "pw-roster")
	users := filepath.Join(t.TempDir(), "vendors.conf")
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"vendors", "nats-config", "-o", users}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	o := parseInAccount(t, users)
	if len(o.Users) != 2 {
		t.Fatalf("%d users, want the demo's 2 vendors", len(o.Users))
	}
	passwords := map[string]string{config.DemoVendorContact: "pw-itslearning", config.DemoVendorRoster: "pw-roster"}
	for _, u := range o.Users {
		vendor, ok := strings.CutPrefix(u.Username, "vendor-")
		if !ok || passwords[vendor] == "" {
			t.Fatalf("user %q is no demo vendor's", u.Username)
		}
		if u.Account == nil || u.Account.Name != "SKOLEBUSS" {
			t.Errorf("%s is not in the account", u.Username)
		}
		if u.Password != passwords[vendor] {
			t.Errorf("%s's password is %q, not its variable's", u.Username, u.Password)
		}
		want := natsauth.VendorPermissions(vendor)
		if p := u.Permissions; p == nil || p.Publish == nil || p.Subscribe == nil ||
			!slices.Equal(p.Publish.Allow, want.Publish.Allow) || !slices.Equal(p.Publish.Deny, want.Publish.Deny) ||
			!slices.Equal(p.Subscribe.Allow, want.Subscribe.Allow) {
			t.Errorf("%s's permissions %+v, want %+v", u.Username, p, want)
		}
	}
	if b, err := os.ReadFile(users); err != nil || strings.Contains(string(b), "pw-") {
		t.Errorf("the file holds a password or cannot be read (%v):\n%s", err, b)
	}
}

// The vendors of --config, written to standard output; the variable's
// name follows the vendor's.
func TestVendorsNATSConfigFromAFile(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "skolebuss.yaml")
	yaml := `environment: sandbox
upstream: {token_url: "http://127.0.0.1:8765/connect/token", api_base: "http://127.0.0.1:8765"}
applications:
  - name: skolebuss-demo
    client_id: skolebuss-demo
    client_secret_env: NOT_NEEDED_HERE
    scopes: [vfsapi:lmsexport]
tenants:
  - {id: 1a2b3c4d-0000-4000-8000-0000000000a1, name: One, application: skolebuss-demo, schedule: {interval: 10m}}
vendors:
  - name: acme-lms_2
    tenants: [1a2b3c4d-0000-4000-8000-0000000000a1]
    delivery: {nats: {}}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"vendors", "nats-config", "--config", cfgFile}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "password: $SKOLEBUSS_VENDOR_ACME_LMS_2_PASSWORD") {
		t.Fatalf("no password variable for acme-lms_2:\n%s", out.String())
	}
	t.Setenv("SKOLEBUSS_VENDOR_ACME_LMS_2_PASSWORD", "pw-acme")
	users := filepath.Join(dir, "vendors.conf")
	if err := os.WriteFile(users, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	o := parseInAccount(t, users)
	if len(o.Users) != 1 || o.Users[0].Username != "vendor-acme-lms_2" || o.Users[0].Password != "pw-acme" {
		t.Fatalf("users %+v", o.Users)
	}
}

func TestVendorsNATSConfigHelpAndErrors(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run(context.Background(), []string{"vendors", "nats-config", "--help"}, &out, &errs); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, want := range []string{"SKOLEBUSS_VENDOR_<NAME>_PASSWORD", "SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD", "accounts {",
		"VENDOR_V", "_INBOX_V", "-config", "-o"} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, args := range [][]string{
		{"--config", "no/such/file.yaml"},
		{"--bogus"},
		{"stray"},
	} {
		errs.Reset()
		if code := run(context.Background(), append([]string{"vendors", "nats-config"}, args...), &out, &errs); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errs.String())
		}
	}
	errs.Reset()
	if code := run(context.Background(), []string{"vendors"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "vendors nats-config  write the NATS users") {
		t.Errorf("skolebuss vendors: exit %d, %q", code, errs.String())
	}
	// -o into a directory that does not exist fails, and writes nothing.
	errs.Reset()
	missing := filepath.Join(t.TempDir(), "no", "vendors.conf")
	if code := run(context.Background(), []string{"vendors", "nats-config", "-o", missing}, &out, &errs); code != 1 {
		t.Errorf("-o into a missing directory: exit %d (%s), want 1", code, errs.String())
	}
}
