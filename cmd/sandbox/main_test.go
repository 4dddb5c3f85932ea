package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

func TestHelpDocumentsFlagsAndAdminCalls(t *testing.T) {
	var out waitfor.Buffer
	err := run(context.Background(), []string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, w := range []string{"-addr", "127.0.0.1:8765", "-config", "-log-level", "-shutdown-timeout",
		"POST /connect/token", "GET  /api/external/lms/pifu", "/_sandbox/stats", "/_sandbox/tenants/{id}/advance",
		"PUT    /_sandbox/faults", "skolebuss-demo-secret"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %q", w)
		}
	}
	// Every flag the command defines is in the help with its usage.
	fs, _ := newFlags(io.Discard)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		_, usage := flag.UnquoteUsage(f)
		if !strings.Contains(out.String(), "-"+f.Name) || !strings.Contains(out.String(), usage) {
			t.Errorf("--help lacks the flag -%s (%s)", f.Name, usage)
		}
	})
	if n < 4 {
		t.Errorf("only %d flags defined", n)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("applications:\n  - client_id: a\n    client_secret: s\n    quota: {daily: -3}\n"), 0o600)
	err := run(context.Background(), []string{"--config", path}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":4: applications[0].quota.daily") {
		t.Fatalf("bad config: %v", err)
	}
}

// TestServeAndShutDown starts the command on a free port, gets a token and
// an export, then stops it as SIGINT would.
func TestServeAndShutDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs waitfor.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--log-level", "info"}, &logs) }()

	addrRE := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listening line in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	resp, err := http.PostForm(base+sandbox.PathToken, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {sandbox.DemoClientID}, "client_secret": {sandbox.DemoClientSecret},
		"scope": {sandbox.ScopeLMSExport}, "tenant_ID": {sandbox.DemoTenantFjordvik},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(`"access_token": "([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != 200 || tok == nil {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", base+sandbox.PathExport, nil)
	req.Header.Set("Authorization", "Bearer "+string(tok[1]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	xml, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(xml, []byte("</enterprise>")) {
		t.Fatalf("export: %d, %d bytes", resp.StatusCode, len(xml))
	}
	if strings.Contains(logs.String(), string(tok[1])) || strings.Contains(logs.String(), sandbox.DemoClientSecret) {
		t.Error("the log holds the token or the secret")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return 10s after the shutdown signal")
	}
	if _, err := http.Get(base + sandbox.PathJWKS); err == nil {
		t.Error("still serving after shutdown")
	}
}
