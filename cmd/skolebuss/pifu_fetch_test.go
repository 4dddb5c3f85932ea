package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/sandbox"
)

func startFetchSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	s, err := sandbox.New(sandbox.DemoConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts.URL
}

func fetchArgs(base string, more ...string) []string {
	return append([]string{"pifu", "fetch", "--api-base", base, "--token-url", base + "/connect/token"}, more...)
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func assertWellFormed(t *testing.T, r io.Reader) {
	t.Helper()
	d := xml.NewDecoder(r)
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	persons := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("output is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "person" {
			persons++
		}
	}
	if persons == 0 {
		t.Error("the export holds no person")
	}
}

// leftovers lists the files in dir other than want.
func leftovers(t *testing.T, dir string, want ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range ents {
		if !contains(want, e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPifuFetchWritesTheExport(t *testing.T) {
	_, base := startFetchSandbox(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "export.xml")
	code, stdout, stderr := runCLI(t, fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", out)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	assertWellFormed(t, f)
	fi, _ := f.Stat()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if stdout != "" || !strings.Contains(stderr, "fetched ") || !strings.Contains(stderr, out) || strings.Contains(stderr, "\r") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	if extra := leftovers(t, dir, "export.xml"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func TestPifuFetchToStdout(t *testing.T) {
	_, base := startFetchSandbox(t)
	code, stdout, stderr := runCLI(t, fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", "-")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	assertWellFormed(t, strings.NewReader(stdout))
}

func TestPifuFetchPermanentRefusalLeavesNoFile(t *testing.T) {
	_, base := startFetchSandbox(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(sandbox.DemoNoScopeClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "export.xml")
	code, _, stderr := runCLI(t, fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", out,
		"--client-id", sandbox.DemoNoScopeClientID, "--client-secret-file", secretFile)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{"invalid_scope", "permanent", "retrying will not help", sandbox.DemoTenantFjordvik} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q: %s", want, stderr)
		}
	}
	if strings.Contains(stderr, sandbox.DemoNoScopeClientSecret) {
		t.Errorf("stderr shows the secret: %s", stderr)
	}
	if extra := leftovers(t, dir, "secret"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func TestPifuFetchSecretFromEnvironment(t *testing.T) {
	_, base := startFetchSandbox(t)
	t.Setenv(envClientSecret, "not-the-demo-secret-123")
	dir := t.TempDir()
	code, _, stderr := runCLI(t, fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", filepath.Join(dir, "x.xml"))...)
	if code != 1 || !strings.Contains(stderr, "invalid_client") || strings.Contains(stderr, "not-the-demo-secret-123") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestPifuFetchCutOffBodyKeepsTheOldFile(t *testing.T) {
	sb, base := startFetchSandbox(t)
	if err := sb.SetFaults(sandbox.DemoTenantFjordvik, sandbox.Faults{CutOffAfter: 5000}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "export.xml")
	if err := os.WriteFile(out, []byte("<old/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", out)...)
	if code != 1 || !strings.Contains(stderr, "truncated_body") || !strings.Contains(stderr, "retrying may help") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "<old/>" {
		t.Errorf("the old file was replaced by %d bytes", len(b))
	}
	if extra := leftovers(t, dir, "export.xml"); len(extra) > 0 {
		t.Errorf("left behind: %v", extra)
	}
}

func TestPifuFetchUsage(t *testing.T) {
	code, _, stderr := runCLI(t, "pifu", "fetch", "-o", "x.xml")
	if code != 2 || !strings.Contains(stderr, "--tenant is required") {
		t.Errorf("no tenant: exit %d: %s", code, stderr)
	}
	const ten = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	code, _, stderr = runCLI(t, "pifu", "fetch", "--tenant", ten)
	if code != 2 || !strings.Contains(stderr, "-o FILE is required") {
		t.Errorf("no output: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "pifu", "fetch", "--tenant", ten, "-o", "x", "--api-base", "ftp://x")
	if code != 2 || !strings.Contains(stderr, "api_base") {
		t.Errorf("bad URL: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "pifu", "fetch", "--tenant", ten, "-o", "x", "--client-id", "mine")
	if code != 2 || !strings.Contains(stderr, envClientSecret) {
		t.Errorf("no secret: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "pifu", "fetch", "--tenant", "fjordvik", "-o", "x")
	if code != 2 || !strings.Contains(stderr, `--tenant: invalid subject token: tenant "fjordvik" is not a UUID`) {
		t.Errorf("tenant not a UUID: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "pifu", "fetch", "--help")
	if code != 0 || !strings.Contains(stderr, "never a partial document") || !strings.Contains(stderr, "-client-secret-file") {
		t.Errorf("--help: exit %d: %s", code, stderr)
	}
}
