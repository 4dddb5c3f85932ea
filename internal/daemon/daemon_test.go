package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

func parse(t *testing.T, args ...string) *Flags {
	t.Helper()
	var d Flags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &d
}

func noEnv(string) string { return "" }

func TestLoadAppliesFlagsOverTheDemoDefault(t *testing.T) {
	d := parse(t, "--nats-url", "nats://nats-a.example:4222", "--metrics-addr", "127.0.0.1:9464")
	cfg, _, err := d.Load(noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://nats-a.example:4222" || cfg.Telemetry.MetricsAddr != "127.0.0.1:9464" {
		t.Fatalf("flags not applied: nats %q metrics %q", cfg.NATS.URL, cfg.Telemetry.MetricsAddr)
	}
}

func TestLoadRefusesBadInputAsUsage(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("environment: sandbox\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"bogus":        {"--config", bad},
		"no such file": {"--config", filepath.Join(t.TempDir(), "missing.yaml")},
		"--log-level":  {"--log-level", "loud"},
		"--embedded":   {"--embedded", "--nats-url", "nats://127.0.0.1:4222"},
		"metrics_addr": {"--metrics-addr", "nowhere"},
	}
	for want, args := range cases {
		_, _, err := parse(t, args...).Load(noEnv, io.Discard)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want a usage error naming %q", args, err, want)
		}
	}
}

func TestNATSOnlyNeedsNoApplicationSecret(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yaml")
	cfg := `upstream:
  token_url: http://127.0.0.1:8765/connect/token
  api_base: http://127.0.0.1:8765
applications:
  - name: app
    client_id: app
    client_secret_env: APP_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - id: aa750693-e3ea-441b-93fe-6a71a8371afa
    application: app
`
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parse(t, "--config", f).Load(noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "APP_SECRET") {
		t.Fatalf("a fetcher without its secret: %v, want an error naming APP_SECRET", err)
	}
	d := parse(t, "--config", f)
	d.NATSOnly = true
	if _, _, err := d.Load(noEnv, io.Discard); err != nil {
		t.Fatalf("a publisher needs no upstream secret: %v", err)
	}
}

// --nats-user picks the user over the file and $SKOLEBUSS_NATS_USER, with the
// password from the variable the config (or $SKOLEBUSS_NATS_PASSWORD_ENV)
// names; Open connects to a real server as that user, and a refused
// connection names the user, never the password.
func TestNATSUserFlag(t *testing.T) {
	s := bustest.RunServer(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "operator", Password: "pw-operator"},
			{Username: "publisher", Password: "pw-publisher"},
		}
	})
	f := filepath.Join(t.TempDir(), "c.yaml")
	cfg := "upstream:\n  token_url: http://127.0.0.1:8765/connect/token\n  api_base: http://127.0.0.1:8765\n" +
		"applications:\n  - name: app\n    client_id: app\n    client_secret_env: APP_SECRET\n    scopes: [vfsapi:lmsexport]\n" +
		"nats:\n  url: " + s.ClientURL() + "\n  user: operator\n  password_env: OPERATOR_PASSWORD\n"
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OPERATOR_PASSWORD":           "pw-operator",
		"PUBLISHER_PASSWORD":          "pw-publisher",
		"SKOLEBUSS_NATS_USER":         "requester", // the flag wins
		"SKOLEBUSS_NATS_PASSWORD_ENV": "PUBLISHER_PASSWORD",
	}
	getenv := func(k string) string { return env[k] }
	d := parse(t, "--config", f, "--nats-user", "publisher")
	d.NATSOnly = true
	c, logger, err := d.Load(getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.User != "publisher" || c.NATS.Password.Reveal() != "pw-publisher" {
		t.Fatalf("user %q with password_env %s, want publisher with PUBLISHER_PASSWORD", c.NATS.User, c.NATS.PasswordEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A stage's user checks what it needs and provisions nothing: before
	// skolebuss provision ran, it stops saying so.
	if _, err := d.Open(ctx, c, "t", logger); !errors.Is(err, bus.ErrNotProvisioned) || !strings.Contains(err.Error(), "skolebuss provision") {
		t.Fatalf("open as publisher before provisioning: %v, want it to name skolebuss provision", err)
	}
	_, js := bustest.Connect(t, s, nats.UserInfo("operator", "pw-operator"))
	if _, err := bus.ProvisionAll(ctx, js, bus.ProvisionConfig{}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := d.Open(ctx, c, "t", logger)
	if err != nil {
		t.Fatalf("open as publisher: %v", err)
	}
	if b.Provisioned || b.Stores.Snapshots == nil || b.Stores.Exports == nil {
		t.Errorf("the publisher provisioned (%v) or lacks its stores", b.Provisioned)
	}
	CloseBus(b, logger)

	// The publisher's name with the operator's password: refused, and the
	// error says as whom, without either password.
	d = parse(t, "--config", f, "--nats-user", "publisher")
	d.NATSOnly = true
	c, logger, err = d.Load(func(k string) string {
		if k == "SKOLEBUSS_NATS_PASSWORD_ENV" || k == "SKOLEBUSS_NATS_USER" {
			return ""
		}
		return env[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	_, err = d.Open(octx, c, "t", logger)
	if err == nil {
		t.Fatal("connected as publisher with the operator's password")
	}
	if !strings.Contains(err.Error(), `as user "publisher"`) || strings.Contains(err.Error(), "pw-") {
		t.Errorf("refused connection: %v, want the user named and no password", err)
	}
}

func TestExitCode(t *testing.T) {
	var b strings.Builder
	cases := []struct {
		err  error
		code int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{fmt.Errorf("%w: --log-level loud", ErrUsage), 2},
		{errors.New("nats at nats://x: refused"), 1},
	}
	for _, c := range cases {
		b.Reset()
		if got := ExitCode("fetcher", c.err, &b); got != c.code {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.code)
		}
		if c.code != 0 && !strings.HasPrefix(b.String(), "fetcher: ") {
			t.Errorf("error not reported with the daemon's name: %q", b.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want error
		says string
	}{
		{[]string{"--n", "3"}, nil, ""},
		{[]string{"-h"}, flag.ErrHelp, ""},
		{[]string{"--nope"}, ErrUsage, "nope"},
		{[]string{"--n", "x"}, ErrUsage, `"x"`},
		{[]string{"--n", "3", "extra"}, ErrUsage, `unexpected argument "extra"`},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("n", 0, "a number")
		err := ParseFlags(fs, tc.args)
		if !errors.Is(err, tc.want) || tc.want == nil && err != nil || !strings.Contains(fmt.Sprint(err), tc.says) {
			t.Errorf("ParseFlags(%q) = %v, want %v saying %q", tc.args, err, tc.want, tc.says)
		}
	}
}
