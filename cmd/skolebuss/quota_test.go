package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/quota"
)

// skolebuss quota reads what the fetchers counted in the shared store and
// the alerts they raised, as a table and as JSON.
func TestQuota(t *testing.T) {
	b := bustest.Open(t)
	path := filepath.Join(t.TempDir(), "skolebuss.yaml")
	yaml := fmt.Sprintf(`environment: sandbox
upstream: {token_url: "http://127.0.0.1:8765/connect/token", api_base: "http://127.0.0.1:8765", quota_zone: Europe/Oslo}
applications:
  - {name: skolebuss-demo, client_id: skolebuss-demo, client_secret_env: NOT_SET_ANYWHERE, scopes: [vfsapi:lmsexport],
     quotas: {daily: 10, monthly: 1000, alert_at: [0.8]}}
tenants:
  - {id: %s, name: Fjordvik, application: skolebuss-demo}
nats: {url: %q}
`, opsTenant, b.Conn.ConnectedUrl())
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A fetcher's limiter, raising its alerts on the ALERTS stream as the fetcher does.
	l := quota.New(b.Stores.RateLimit, b.Stores.Quota, func(ctx context.Context, a quota.Alert) error {
		m, err := messages.Encode(messages.QuotaAlert(a))
		if err != nil {
			return err
		}
		_, err = b.JS.PublishMsg(ctx, m)
		return err
	}, nil)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	lim := app.Limits(cfg, cfg.Applications[0])
	for range 8 {
		if _, err := l.Take(ctx, "skolebuss-demo", lim); err != nil {
			t.Fatal(err)
		}
	}
	var out, errs bytes.Buffer
	q := func(args ...string) (int, string, string) {
		out.Reset()
		errs.Reset()
		code := run(ctx, append([]string{"quota", "--config", path}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}
	code, o, e := q()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	for _, want := range []string{"daily ", "monthly ", "10 (80%)", "1000 (1%)", "Europe/Oslo", "reached 80%", "ok"} {
		if !strings.Contains(o, want) {
			t.Errorf("output lacks %q:\n%s", want, o)
		}
	}

	for range 3 {
		_, _ = l.Take(ctx, "skolebuss-demo", lim) // two granted, then refused: paused
	}
	code, o, e = q("--json")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, e)
	}
	var row quotaRow
	if err := json.Unmarshal([]byte(o), &row); err != nil {
		t.Fatalf("--json: %v\n%s", err, o)
	}
	if row.Application != "skolebuss-demo" || row.Daily.Used != 10 || row.Daily.Remaining != 0 || !row.Daily.Paused ||
		row.Monthly.Used != 10 || row.Monthly.Remaining != 990 || row.Zone != "Europe/Oslo" {
		t.Errorf("--json: %+v", row)
	}
	var kinds []string
	for _, a := range row.Alerts {
		kinds = append(kinds, a.Kind+" "+a.Period)
	}
	if strings.Join(kinds, ", ") != "threshold daily, paused daily" {
		t.Errorf("alerts %q, want the daily threshold, then the pause", kinds)
	}
	if _, o, _ := q(); !strings.Contains(o, "paused until") || !strings.Contains(o, "used up") {
		t.Errorf("paused state not shown:\n%s", o)
	}

	if code, _, e := q("--application", "nope"); code != 2 || !strings.Contains(e, `"nope"`) || !strings.Contains(e, "skolebuss-demo") {
		t.Errorf("unknown application: exit %d %q", code, e)
	}
	if code, _, _ := q("--alerts", "-1"); code != 2 {
		t.Errorf("--alerts -1: exit %d", code)
	}
}
