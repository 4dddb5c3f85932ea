package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

func noenv(string) string { return "" }

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, noenv); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"-config FILE", "-nats-url URL", "-log-level", "Nats-Msg-Id", "skolebuss export", "SIGTERM"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// The daemon requests each tenant's current slot at start (without jitter
// its time has come), collapses with a replica, and
// stops cleanly when its context ends (SIGINT/SIGTERM in main).
func TestRunsUntilStopped(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	cfgFile := filepath.Join(t.TempDir(), "skolebuss.yaml")
	yaml := `environment: sandbox
upstream: {token_url: "http://127.0.0.1:8765/connect/token", api_base: "http://127.0.0.1:8765"}
applications:
  - name: skolebuss-demo
    client_id: skolebuss-demo
    client_secret_env: TEST_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - {id: 1a2b3c4d-0000-4000-8000-0000000000a1, name: One, application: skolebuss-demo, schedule: {interval: 10s}}
  - {id: 1a2b3c4d-0000-4000-8000-0000000000a2, name: Two, application: skolebuss-demo, schedule: {interval: 10s}}
`
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "TEST_SECRET" {
			return "s3cret"
		}
		return ""
	}
	runCtx, stop := context.WithCancel(ctx)
	var logs waitfor.Buffer
	done := make(chan error, 2)
	for range 2 { // two replicas
		go func() {
			done <- run(runCtx, []string{"--config", cfgFile, "--nats-url", b.Conn.ConnectedUrl()}, &logs, env)
		}()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := b.JS.Stream(ctx, bus.StreamJobs)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= 2 && strings.Count(logs.String(), "export job requested") >= 4 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("requester ended early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs after 15s\n%s", info.State.Msgs, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("requester did not stop")
		}
	}
	out := logs.String()
	if !strings.Contains(out, "duplicate=true") || !strings.Contains(out, "requester stopped") {
		t.Errorf("logs lack a collapsed duplicate or the stop:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Error("the secret is in the log")
	}
}
