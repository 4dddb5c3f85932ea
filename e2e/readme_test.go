package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// TestReadmeSandboxCurl runs the README's curl lines, as written, against
// the sandbox binary: a token, the start of an export, the next
// generation. Only the port is moved, to a free one.
func TestReadmeSandboxCurl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sandbox binary; skipped with -short")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README's lines (scripts/test.sh installs it)")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var script string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(block[1], "TOKEN=$(curl") {
			script = block[1]
		}
	}
	if script == "" {
		t.Fatal("README has no sh block with the TOKEN=$(curl ... lines")
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "../cmd/sandbox").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sb := exec.Command(filepath.Join(bin, "sandbox"), "--addr", addr)
	out := &waitfor.Buffer{}
	sb.Stdout, sb.Stderr = out, out
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Process.Kill(); _ = sb.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), addr) {
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not say it listens on %s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	script = strings.ReplaceAll(script, "127.0.0.1:8765", addr)
	cmd := exec.Command("bash", "-c", script+"\necho \"token length ${#TOKEN}\"\n")
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README lines failed: %v\n%s", err, got)
	}
	for _, want := range []string{"<?xml", "<enterprise", `"generation": 1`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("README lines printed no %q:\n%s", want, got)
		}
	}
	if m := regexp.MustCompile(`token length (\d+)`).FindStringSubmatch(string(got)); m == nil || len(m[1]) < 3 {
		t.Errorf("README lines got no token:\n%s", got)
	}
}
