// Package e2e runs skolebuss as its README shows: the daemons as separate
// processes against one NATS server, driven by the operator CLI.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const maaneby = "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *waitfor.Buffer
	done chan error
}

// TestDaemonsApart starts the sandbox, the requester with the embedded NATS
// server, a fetcher, a publisher, a fan-out and `skolebuss watch` as six
// processes, requests two exports of one tenant around a sandbox generation
// with `skolebuss export`, and checks that the watching vendor's copy matched
// both and that the fan-out delivered both to the configured vendor; then
// stops every process with SIGINT and expects a clean exit.
func TestDaemonsApart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "../cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	sandboxAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	natsPort := freePort(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`environment: sandbox
upstream:
  token_url: http://%[1]s/connect/token
  api_base: http://%[1]s
applications:
  - name: skolebuss-demo
    client_id: skolebuss-demo
    client_secret_env: DEMO_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - id: %[2]s
    name: Måneby kommune
    application: skolebuss-demo
    schedule: {interval: 24h, jitter: 1m}
nats:
  embedded: {data_dir: %[3]s/nats, host: 127.0.0.1, port: %[4]d}
publisher:
  spool_dir: %[3]s/spool
vendors:
  - name: apart-vendor
    tenants: [%[2]s]
    delivery: {nats: {}}
`, sandboxAddr, maaneby, dir, natsPort)
	cfgFile := filepath.Join(dir, "skolebuss.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The embedded server writes the password of its own user into the
	// cache directory, where the processes joining it read it: this test's own.
	env := append(os.Environ(), "DEMO_SECRET=skolebuss-demo-secret", "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))

	var procs []*proc
	start := func(name string, args ...string) *proc {
		t.Helper()
		p := &proc{name: name, out: &waitfor.Buffer{}, done: make(chan error, 1)}
		p.cmd = exec.Command(filepath.Join(bin, strings.Fields(name)[0]), args...)
		p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = env, p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		procs = append(procs, p)
		return p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s:\n%s", p.name, p.out.String())
			}
		}
	})
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "skolebuss"), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skolebuss %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	waitFor := func(what string, p *proc, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond(p.out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; %s said:\n%s", what, p.name, p.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	sb := start("sandbox", "--addr", sandboxAddr)
	waitFor("the sandbox", sb, func(s string) bool { return strings.Contains(s, "listening") || strings.Contains(s, sandboxAddr) })
	req := start("requester", "--embedded", "--config", cfgFile)
	waitFor("the embedded NATS server", req, func(s string) bool { return strings.Contains(s, "requester schedule started") })
	fetch := start("fetcher", "--config", cfgFile, "--metrics-addr", metricsAddr)
	pub := start("publisher", "--config", cfgFile)
	fan := start("fanout", "--config", cfgFile)
	// The fan-out creates the vendor's stream before it says it is delivering.
	waitFor("the fan-out", fan, func(s string) bool { return strings.Contains(s, "delivering") })
	watch := start("skolebuss watch", "watch", "--config", cfgFile)
	waitFor("the watcher", watch, func(s string) bool { return strings.Contains(s, "watching the LMS stream") })
	vwatch := start("skolebuss watch --vendor", "watch", "--config", cfgFile, "--vendor", "apart-vendor")
	waitFor("the vendor's watcher", vwatch, func(s string) bool { return strings.Contains(s, "watching vendor apart-vendor's stream") })

	if out := run("export", "--config", cfgFile, "--tenant", maaneby, "--id", "apart1"); !strings.Contains(out, "requested: job apart1") {
		t.Fatalf("export: %s", out)
	}
	waitFor("the first export at the vendor", watch, func(s string) bool {
		return strings.Contains(s, "export apart1 completed") && strings.Contains(s, "copy matches export.completed")
	})
	resp, err := http.Post("http://"+sandboxAddr+"/_sandbox/tenants/"+maaneby+"/advance", "application/json", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("advance the sandbox: %v %v", resp, err)
	}
	resp.Body.Close()
	// The second request waits for its own outcome, as an operator would.
	if out := run("export", "--config", cfgFile, "--tenant", maaneby, "--id", "apart2", "--wait", "--wait-timeout", "60s"); !strings.Contains(out, "export apart2 applied: created ") {
		t.Fatalf("export --wait: %s", out)
	}
	waitFor("the second export at the vendor", watch, func(s string) bool {
		i := strings.Index(s, "export apart2 completed")
		return i >= 0 && strings.Contains(s[i:], "copy matches export.completed")
	})
	if s := watch.out.String(); !strings.Contains(s, "export apart2 started: ") || strings.Contains(s, "export apart2 started: 0 changes") {
		t.Fatalf("the second generation brought no changes:\n%s", s)
	}

	// The vendor's own copy, from its own stream, matched both exports.
	waitFor("the second export in the vendor's own copy", vwatch, func(s string) bool {
		i := strings.Index(s, "export apart2 completed")
		return strings.Contains(s, "export apart1 completed") && i >= 0 && strings.Contains(s[i:], "copy matches export.completed")
	})
	if s := vwatch.out.String(); strings.Contains(s, "MISMATCH") {
		t.Fatalf("the vendor's copy did not match:\n%s", s)
	}

	// The fan-out delivered both exports to the vendor's stream.
	for _, id := range []string{"apart1", "apart2"} {
		waitFor("the fan-out of "+id, fan, func(s string) bool {
			for line := range strings.SplitSeq(s, "\n") {
				if strings.Contains(line, "fan-out: export delivered") && strings.Contains(line, "vendor=apart-vendor") &&
					strings.Contains(line, "export_id="+id) {
					return true
				}
			}
			return false
		})
	}

	// The fetcher serves its metrics, with the job it did.
	mresp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(body), "skolebuss_fetch_jobs_total") || !strings.Contains(string(body), "skolebuss_quota_used") {
		t.Fatalf("fetcher metrics lack the jobs and the quota use:\n%s", body)
	}
	for _, p := range []*proc{fetch, pub, fan, req} {
		if strings.Contains(p.out.String(), "skolebuss-demo-secret") {
			t.Fatalf("%s logged the client secret", p.name)
		}
	}

	// SIGINT stops every process cleanly, the server's owner last.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []*proc{watch, vwatch, fan, fetch, pub, req, sb} {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s after SIGINT: %v", p.name, err)
			}
		case <-ctx.Done():
			t.Fatalf("%s did not stop after SIGINT", p.name)
		}
	}
}
