//go:build soak

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/fetcher"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// soakTenant is one municipality of the soak run.
type soakTenant struct {
	id, name, size string
	seed           int
}

var soakTenants = []soakTenant{
	{"aa750693-e3ea-441b-93fe-6a71a8371afa", "Fjordvik kommune", "tiny", 1001},
	{"0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f", "Måneby kommune", "small", 1002},
	{"7c9e6679-7425-40de-944b-e07fc1f90ae7", "Nordstrand kommune", "medium", 1003},
}

const (
	soakGenerations = 4
	soakAckWait     = "5s" // of the fetchers' and publishers' consumers: how soon a killed one's message comes back
	// soakWaitExports is how long a generation's exports may take to match at
	// the vendor: far more than nine transient failures of one job in a row
	// would wait with the test's retry backoff (0.5s+1s+2s+5s×6).
	soakWaitExports = 2 * time.Minute
	// soakSlowBody (bytes per second) makes the largest tenant's export, about
	// 14 MB, take 3–4 s to stream in a generation whose victim is a fetcher,
	// so the kill lands while the body is in flight.
	soakSlowBody = 4_000_000
)

// TestSoak runs the whole pipeline as separate processes against a faulty
// sandbox (30% 500/502/503 with Retry-After 1s, 50ms latency, tokens that
// expire after 3s while announcing an hour), two fetchers and two
// publishers, and `skolebuss watch` as the vendor. For each of four
// generations it requests an export of every tenant, SIGKILLs a fetcher (in
// two generations, drawn at random) or a publisher (in the other two) while
// the exports run and starts a new one in its place, waits until the vendor's
// copy of every tenant matched the export, then advances every tenant. In a
// fetcher's generation the largest tenant's body streams at 4 MB/s and the
// fetcher reading it is killed mid-body; the fault is then cleared and the
// job, redelivered after the ack wait, fetched again. In the second
// generation the largest tenant's export body is cut off midway once. At the
// end: at least one fetcher kill cut a download the sandbox was still
// sending, every tenant's copy matched its latest export, the DLQ holds no
// dead letters, and no event id is stored twice in the LMS stream.
//
// SOAK_SEED=N repeats a run's choices (which process is killed, when) and the
// sandbox's fault draws. SOAK_LOGS=DIR keeps every process's output there
// (a failed run keeps it in a new temporary directory anyway).
func TestSoak(t *testing.T) {
	began := time.Now()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED: %v", err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	t.Logf("seed %d (SOAK_SEED=%d repeats this run's choices)", seed, seed)

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "../cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	sandboxAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	natsPort := freePort(t)
	sandboxCfg, cfgFile := writeSoakConfigs(t, dir, sandboxAddr, natsPort, seed)
	env := append(os.Environ(), "DEMO_SECRET=skolebuss-demo-secret")

	h := &soakHarness{t: t, bin: bin, env: env}
	t.Cleanup(h.cleanup)

	sb := h.start("sandbox", "sandbox", "--addr", sandboxAddr, "--config", sandboxCfg)
	h.waitFor("the sandbox", sb, 30*time.Second, func(s string) bool { return strings.Contains(s, sandboxAddr) })
	req := h.start("requester", "requester", "--embedded", "--config", cfgFile)
	h.waitFor("the embedded NATS server", req, 30*time.Second, func(s string) bool { return strings.Contains(s, "requester schedule started") })
	workers := map[string][]string{
		"fetcher":   {"fetcher", "--config", cfgFile, "--ack-wait", soakAckWait},
		"publisher": {"publisher", "--config", cfgFile, "--ack-wait", soakAckWait},
	}
	var live []*proc // the fetchers and publishers now running
	for _, role := range []string{"fetcher", "fetcher", "publisher", "publisher"} {
		live = append(live, h.start(h.nextName(role), workers[role]...))
	}
	watch := h.start("watch", "skolebuss", "watch", "--config", cfgFile)
	h.waitFor("the watcher", watch, 30*time.Second, func(s string) bool { return strings.Contains(s, "watching the LMS stream") })

	run := token(rng)
	cutTenant := soakTenants[len(soakTenants)-1] // the largest: its body is long enough to cut midway
	var (
		latest       = map[string]string{} // tenant → its latest export id
		exports      int
		kills        []string
		cutBytes     int64
		cuts         int
		fetcherKills int
		interrupted  []string // the downloads a fetcher kill cut: "fetcher2 at 1200000 bytes"
	)
	// Two generations kill a fetcher, two a publisher, in a random order.
	roles := []string{"fetcher", "fetcher", "publisher", "publisher"}
	rng.Shuffle(len(roles), func(i, j int) { roles[i], roles[j] = roles[j], roles[i] })
	for gen := 1; gen <= soakGenerations; gen++ {
		role := roles[(gen-1)%len(roles)]
		slowFault := fmt.Sprintf(`{"slow_body":%d}`, soakSlowBody)
		var startedBefore int64 // exports of the largest tenant the sandbox began to send
		if role == "fetcher" && gen != 2 {
			h.admin(http.MethodPut, sandboxAddr, "/_sandbox/faults/"+cutTenant.id, slowFault)
			startedBefore = sandboxStats(t, sandboxAddr).exportsOf(cutTenant.id)
		}
		if gen == 2 {
			size := servedBytes(sb.out.String(), cutTenant.id)
			if size < 2 {
				t.Fatalf("no export of %s served in generation 1; sandbox said:\n%s", cutTenant.name, sb.out.String())
			}
			cutBytes = size / 2
			h.admin(http.MethodPut, sandboxAddr, "/_sandbox/faults/"+cutTenant.id, fmt.Sprintf(`{"cut_off_after":%d}`, cutBytes))
			t.Logf("generation 2: %s's export body cut off after %d of about %d bytes", cutTenant.name, cutBytes, size)
		}
		cutsBefore := strings.Count(sb.out.String(), `msg="export cut off"`)
		for _, tn := range soakTenants {
			id := fmt.Sprintf("soak-g%d-%s-%s", gen, tn.size, run)
			if out := h.cli("export", "--config", cfgFile, "--tenant", tn.id, "--id", id); !strings.Contains(out, "requested: job "+id) {
				t.Fatalf("export: %s", out)
			}
			latest[tn.id] = id
			exports++
		}

		if gen == 2 {
			// Clear the cut as soon as the sandbox served one: the export must
			// then come through on a retry, not as a dead letter.
			h.waitFor("the cut-off export", sb, soakWaitExports, func(s string) bool {
				return strings.Count(s, `msg="export cut off"`) > cutsBefore
			})
			// In a fetcher's generation the retry streams slowly instead.
			if role == "fetcher" {
				h.admin(http.MethodPut, sandboxAddr, "/_sandbox/faults/"+cutTenant.id, slowFault)
				startedBefore = sandboxStats(t, sandboxAddr).exportsOf(cutTenant.id)
			} else {
				h.admin(http.MethodDelete, sandboxAddr, "/_sandbox/faults/"+cutTenant.id, "")
			}
			cuts = strings.Count(sb.out.String(), `msg="export cut off"`) - cutsBefore
			now := "cleared"
			if role == "fetcher" {
				now = fmt.Sprintf("slow_body %d B/s instead", soakSlowBody)
			}
			t.Logf("generation 2: %d export(s) of %s cut off; fault %s", cuts, cutTenant.name, now)
		}

		// While the exports run: kill a fetcher or a publisher and start
		// another in its place. A fetcher dies while the largest tenant's
		// slowed body streams in (of the two, the one reading bytes); a
		// publisher after that body was announced, while it parses, diffs and
		// publishes (40k events in generation 1, a few hundred later; of the
		// two, the one using the CPU, else either).
		big := latest[cutTenant.id]
		if role == "fetcher" {
			// The sandbox counts an export once it answered 200, before the
			// body: from then on the body takes 3–4 s.
			h.waitForSandbox("the sandbox to start sending "+big, sandboxAddr, soakWaitExports, func(st soakStats) bool {
				return st.exportsOf(cutTenant.id) > startedBefore
			})
		} else {
			announced := regexp.MustCompile(`msg="export fetched".* job_id=` + regexp.QuoteMeta(big) + ` `)
			h.waitForAny("fetcher", "the announcement of "+big, soakWaitExports, announced.MatchString)
			if gen == 1 {
				time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
			} else {
				time.Sleep(time.Duration(rng.IntN(250)) * time.Millisecond)
			}
		}
		var candidates []int
		for i, p := range live {
			if strings.HasPrefix(p.name, role) {
				candidates = append(candidates, i)
			}
		}
		// A fetcher downloading at soakSlowBody reads over 1 MB in 300 ms; a
		// publisher at work is busy on the CPU.
		var i int
		if role == "fetcher" {
			i = mostActive(live, candidates, rng, 300*time.Millisecond, readBytes)
		} else {
			i = mostActive(live, candidates, rng, 100*time.Millisecond, cpuTicks)
		}
		victim := live[i]
		matched := 0
		for _, tn := range soakTenants {
			if completedLine(watch.out.String(), latest[tn.id]) != "" {
				matched++
			}
		}
		abortedBefore := len(abortedExports(sb.out.String(), cutTenant.id))
		servedBefore := len(servedExports(sb.out.String(), cutTenant.id))
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", victim.name, err)
		}
		<-victim.done
		live[i] = h.start(h.nextName(role), workers[role]...)
		kills = append(kills, fmt.Sprintf("%s at %s", victim.name, time.Since(began).Round(time.Millisecond)))
		t.Logf("generation %d: killed %s (SIGKILL) with %d of %d exports at the vendor, started %s", gen, victim.name, matched, len(soakTenants), live[i].name)
		if role == "fetcher" {
			// The kill interrupted a download when the sandbox, still
			// sending that body, saw its client go away and aborted it
			// short of the whole (it notices on its next write, within a
			// tenth of a second at this rate).
			fetcherKills++
			deadline := time.Now().Add(3 * time.Second)
			for len(abortedExports(sb.out.String(), cutTenant.id)) == abortedBefore && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if a := abortedExports(sb.out.String(), cutTenant.id); len(a) > abortedBefore {
				interrupted = append(interrupted, fmt.Sprintf("%s at %d bytes", victim.name, a[len(a)-1]))
				t.Logf("generation %d: the kill cut %s's download: the sandbox aborted the body after %d bytes", gen, victim.name, a[len(a)-1])
			} else {
				t.Logf("generation %d: the kill of %s interrupted no download (the sandbox served %d and aborted none of %s since)",
					gen, victim.name, len(servedExports(sb.out.String(), cutTenant.id))-servedBefore, cutTenant.name)
			}
			// The retry, on the job redelivered after the ack wait, streams
			// at full speed.
			h.admin(http.MethodDelete, sandboxAddr, "/_sandbox/faults/"+cutTenant.id, "")
		}

		for _, tn := range soakTenants {
			id := latest[tn.id]
			h.waitFor("export "+id+" to match at the vendor", watch, soakWaitExports, func(s string) bool {
				return completedLine(s, id) != ""
			})
			if l := completedLine(watch.out.String(), id); !strings.Contains(l, "copy matches export.completed") {
				t.Fatalf("the vendor's copy of %s after %s: %s", tn.name, id, l)
			}
		}
		t.Logf("generation %d: all %d exports matched at the vendor (%s)", gen, len(soakTenants), time.Since(began).Round(time.Millisecond))
		if gen < soakGenerations {
			for _, tn := range soakTenants {
				h.admin(http.MethodPost, sandboxAddr, "/_sandbox/tenants/"+tn.id+"/advance", "")
			}
		}
	}

	// Every tenant's copy matched its latest export, and nothing mismatched
	// on the way; later generations brought changes to apply.
	ws := watch.out.String()
	if strings.Contains(ws, "MISMATCH") {
		t.Errorf("the vendor's copy mismatched an export:\n%s", ws)
	}
	for _, tn := range soakTenants {
		if l := completedLine(ws, latest[tn.id]); !strings.Contains(l, "copy matches export.completed") {
			t.Errorf("%s: latest export %s: %q", tn.name, latest[tn.id], l)
		}
		if tn.size == "tiny" {
			continue // a handful of records may not change in a generation
		}
		last := fmt.Sprintf("soak-g%d-%s-%s", soakGenerations, tn.size, run)
		if strings.Contains(ws, "export "+last+" started: 0 changes") || !strings.Contains(ws, "export "+last+" started: ") {
			t.Errorf("%s: the last generation brought no changes to apply:\n%s", tn.name, ws)
		}
	}

	// No dead letters: none was caused on purpose (the cut-off must be retried).
	dlq := h.cli("dlq", "--config", cfgFile, "--json", "--last", "0")
	var dead []string
	for _, l := range strings.Split(dlq, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "{") {
			dead = append(dead, l)
		}
	}
	if len(dead) > 0 {
		t.Errorf("%d dead letter(s):\n%s", len(dead), strings.Join(dead, "\n"))
	}

	// No event id stored twice in the LMS stream.
	events, dupMsgIDs, dupCEIDs := lmsDuplicates(t, natsPort)
	if len(dupMsgIDs) > 0 || len(dupCEIDs) > 0 {
		t.Errorf("LMS stream: %d events, Nats-Msg-Id stored twice: %v; ce-id stored twice: %v", events, dupMsgIDs, dupCEIDs)
	}

	// What the kills interrupted: downloads the sandbox saw cut by a dead
	// fetcher, and exports a publisher redid (events JetStream already had).
	if len(interrupted) == 0 {
		t.Errorf("none of %d fetcher kill(s) interrupted a download in flight; the sandbox said:\n%s", fetcherKills, sb.out.String())
	}
	// Each interrupted download left chunks no object names; the fetchers'
	// sweep purges them once idle for an hour. Swept now with no age, they
	// must be there, and go.
	swept := sweepNow(t, natsPort)
	if swept.Uploads < len(interrupted) {
		t.Errorf("the sweep found %d abandoned download(s), want at least the %d interrupted", swept.Uploads, len(interrupted))
	}
	if again := sweepNow(t, natsPort); again.Uploads != 0 {
		t.Errorf("a second sweep found %d more", again.Uploads)
	}
	t.Logf("summary: the sweep purged %d abandoned download(s), %d chunks", swept.Uploads, swept.Chunks)
	var redone []string
	for _, p := range h.procs {
		if !strings.HasPrefix(p.name, "publisher") {
			continue
		}
		for _, m := range regexp.MustCompile(`export_id=(\S+) events=\d+ .* duplicates=([1-9]\d*)`).FindAllStringSubmatch(p.out.String(), -1) {
			redone = append(redone, fmt.Sprintf("%s by %s (%s duplicates)", m[1], p.name, m[2]))
		}
	}
	t.Logf("summary: %d of %d fetcher kill(s) interrupted a download in flight %v; exports redone after a publisher died: %d %v",
		len(interrupted), fetcherKills, interrupted, len(redone), redone)

	st := sandboxStats(t, sandboxAddr)
	app := st.Applications["skolebuss-demo"]
	codes := faultStatuses(sb.out.String())
	t.Logf("summary: %d exports done over %d generations, %d kills (%s), %d LMS events with no id twice, %d dead letters",
		exports, soakGenerations, len(kills), strings.Join(kills, ", "), events, len(dead))
	t.Logf("summary: upstream served %d export requests, %d with a 5xx (500: %d, 502: %d, 503: %d), %d cut off after %d bytes, %d faulted in all; %d tokens issued, %d refused as expired",
		app.Requests, codes[500]+codes[502]+codes[503], codes[500], codes[502], codes[503], cuts, cutBytes, app.Faulted,
		app.TokensIssued, strings.Count(sb.out.String(), `reason=invalid_token problem="the token is expired"`))
	t.Logf("summary: took %s", time.Since(began).Round(time.Millisecond))

	// The survivors still stop cleanly on SIGINT.
	for _, p := range append(append([]*proc{watch}, live...), req, sb) {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s after SIGINT: %v", p.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of SIGINT", p.name)
		}
	}
}

// writeSoakConfigs writes the sandbox's config (tenants and faults) and the
// skolebuss config (no schedule: only `skolebuss export` makes jobs).
func writeSoakConfigs(t *testing.T, dir, sandboxAddr string, natsPort int, seed uint64) (sandboxCfg, cfgFile string) {
	t.Helper()
	var sbTenants, ids, sbIDs strings.Builder
	for _, tn := range soakTenants {
		fmt.Fprintf(&sbIDs, "      - %s\n", tn.id)
		fmt.Fprintf(&sbTenants, "  - {id: %s, name: %s, size: %s, seed: %d}\n", tn.id, tn.name, tn.size, tn.seed)
		fmt.Fprintf(&ids, "  - {id: %s, name: %s, application: skolebuss-demo, schedule: {interval: 0s}}\n", tn.id, tn.name)
	}
	sb := fmt.Sprintf(`token_lifetime: 1h
fault_seed: %d
faults:
  error_rate: 0.3
  error_statuses: [500, 502, 503]
  retry_after: 1s
  latency: 50ms
  token_lifetime: 3s
applications:
  - client_id: skolebuss-demo
    client_secret: skolebuss-demo-secret
    scopes: [vfsapi:lmsexport]
    tenants:
%stenants:
%s`, seed, sbIDs.String(), sbTenants.String())
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
%[2]snats:
  embedded: {data_dir: %[3]s/nats, host: 127.0.0.1, port: %[4]d}
publisher:
  spool_dir: %[3]s/spool
# At a 30%% fault rate five failures in a row (the default's dead letter)
# come about once in 400 runs; ten in a row, once in 170,000.
retry:
  max_attempts: 10
  backoff: [500ms, 1s, 2s, 5s]
`, sandboxAddr, ids.String(), dir, natsPort)
	sandboxCfg, cfgFile = filepath.Join(dir, "sandbox.yaml"), filepath.Join(dir, "skolebuss.yaml")
	for f, body := range map[string]string{sandboxCfg: sb, cfgFile: cfg} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return sandboxCfg, cfgFile
}

// soakHarness starts and tracks the run's processes.
type soakHarness struct {
	t     *testing.T
	bin   string
	env   []string
	procs []*proc // every process started, killed ones too
	count map[string]int
}

// nextName numbers a role's processes: fetcher1, fetcher2, ...
func (h *soakHarness) nextName(role string) string {
	if h.count == nil {
		h.count = map[string]int{}
	}
	h.count[role]++
	return fmt.Sprintf("%s%d", role, h.count[role])
}

// start runs argv (a binary of the build, then its arguments) as name.
func (h *soakHarness) start(name string, argv ...string) *proc {
	h.t.Helper()
	p := &proc{name: name, out: &waitfor.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(h.bin, argv[0]), argv[1:]...)
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = h.env, p.out, p.out
	if err := p.cmd.Start(); err != nil {
		h.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	h.procs = append(h.procs, p)
	return p
}

// cleanup kills what still runs and, when the test failed, keeps every
// process's output in a directory that outlives the test.
func (h *soakHarness) cleanup() {
	for _, p := range h.procs {
		_ = p.cmd.Process.Kill()
	}
	logs := os.Getenv("SOAK_LOGS")
	if logs == "" && !h.t.Failed() {
		return
	}
	var err error
	if logs == "" {
		logs, err = os.MkdirTemp("", "skolebuss-soak-logs-")
	} else {
		err = os.MkdirAll(logs, 0o700)
	}
	if err != nil {
		h.t.Logf("logs: %v", err)
		return
	}
	for _, p := range h.procs {
		_ = os.WriteFile(filepath.Join(logs, p.name+".log"), []byte(p.out.String()), 0o600)
	}
	h.t.Logf("every process's output is in %s", logs)
	if !h.t.Failed() {
		return
	}
	for _, p := range h.procs {
		h.t.Logf("--- %s (last lines):\n%s", p.name, tail(p.out.String(), 15))
	}
}

// waitForAny waits until the output of some process whose name starts with
// role (killed ones too) satisfies cond.
func (h *soakHarness) waitForAny(role, what string, limit time.Duration, cond func(string) bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		for _, p := range h.procs {
			if strings.HasPrefix(p.name, role) && cond(p.out.String()) {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *soakHarness) waitFor(what string, p *proc, limit time.Duration, cond func(string) bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond(p.out.String()) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s; %s said:\n%s", limit, what, p.name, tail(p.out.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cli runs `skolebuss args...` and returns its output.
func (h *soakHarness) cli(args ...string) string {
	h.t.Helper()
	cmd := exec.Command(filepath.Join(h.bin, "skolebuss"), args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("skolebuss %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// admin makes one of the sandbox's admin calls and expects 200.
func (h *soakHarness) admin(method, addr, path, body string) {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
}

// waitForSandbox polls the sandbox's stats until cond holds.
func (h *soakHarness) waitForSandbox(what, addr string, limit time.Duration, cond func(soakStats) bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond(sandboxStats(h.t, addr)) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mostActive returns the one of candidates (indexes into procs) whose
// measure (of its pid) grew the most over window, or a random one when none
// grew.
func mostActive(procs []*proc, candidates []int, rng *rand.Rand, window time.Duration, measure func(pid int) int64) int {
	before := make([]int64, len(candidates))
	for k, i := range candidates {
		before[k] = measure(procs[i].cmd.Process.Pid)
	}
	time.Sleep(window)
	best, most := candidates[rng.IntN(len(candidates))], int64(0)
	for k, i := range candidates {
		if d := measure(procs[i].cmd.Process.Pid) - before[k]; d > most {
			best, most = i, d
		}
	}
	return best
}

// readBytes is what process pid read by read(2) and the like, sockets
// included, from /proc (0 where there is none).
func readBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// cpuTicks is the user and system CPU time of process pid in clock ticks,
// from /proc (0 where there is none).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// completedLine is the watcher's line saying export id completed, or "".
func completedLine(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "export "+id+" completed") {
			return l
		}
	}
	return ""
}

// servedBytes is the size of the last export of tenant the sandbox served
// whole, from its log.
func servedBytes(log, tenant string) int64 {
	re := regexp.MustCompile(`msg="export served".*tenant=` + regexp.QuoteMeta(tenant) + `.* bytes=(\d+)`)
	var n int64
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		n, _ = strconv.ParseInt(m[1], 10, 64)
	}
	return n
}

// servedExports is the size of every export of tenant the sandbox served
// whole, from its log.
func servedExports(log, tenant string) []int64 {
	return exportBytes(log, "export served", tenant)
}

// abortedExports is how many bytes of each export of tenant the sandbox
// sent before it aborted the body because the client went away, from its
// log.
func abortedExports(log, tenant string) []int64 {
	return exportBytes(log, "export aborted", tenant)
}

func exportBytes(log, msg, tenant string) []int64 {
	re := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `".*tenant=` + regexp.QuoteMeta(tenant) + `.* bytes=(\d+)`)
	var sizes []int64
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		sizes = append(sizes, n)
	}
	return sizes
}

// faultStatuses counts the 5xx answers the sandbox injected, by status.
func faultStatuses(log string) map[int]int {
	re := regexp.MustCompile(`msg="export fault".* status=(\d+)`)
	n := map[int]int{}
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		c, _ := strconv.Atoi(m[1])
		n[c]++
	}
	return n
}

type soakAppStats struct {
	Requests     int64 `json:"requests"`
	Served       int64 `json:"served"`
	Faulted      int64 `json:"faulted"`
	TokensIssued int64 `json:"tokens_issued"`
}

// soakStats is the part of GET /_sandbox/stats the test reads.
type soakStats struct {
	Applications map[string]soakAppStats `json:"applications"`
	Tenants      []struct {
		ID      string `json:"id"`
		Exports int64  `json:"exports"` // answered 200: the body began
	} `json:"tenants"`
}

// exportsOf is how many exports of tenant the sandbox began to send.
func (st soakStats) exportsOf(tenant string) int64 {
	for _, tn := range st.Tenants {
		if strings.EqualFold(tn.ID, tenant) {
			return tn.Exports
		}
	}
	return 0
}

func sandboxStats(t *testing.T, addr string) soakStats {
	t.Helper()
	var st soakStats
	resp, err := http.Get("http://" + addr + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("sandbox stats: %v", err)
	}
	return st
}

// sweepNow runs the fetcher's sweep of abandoned downloads with no age limit
// (every fetcher is idle by now).
func sweepNow(t *testing.T, natsPort int) fetcher.Swept {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatalf("connect to the embedded NATS server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetcher.SweepOrphanChunks(ctx, js, 0)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return got
}

// lmsDuplicates reads the whole LMS stream with an ordered consumer and
// returns the events read and the Nats-Msg-Id and ce-id values stored more
// than once (an event without either counts as a duplicate of "").
func lmsDuplicates(t *testing.T, natsPort int) (events int, dupMsgIDs, dupCEIDs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatalf("connect to the embedded NATS server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "LMS")
	if err != nil {
		t.Fatalf("LMS stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgIDs, ceIDs := map[string]int{}, map[string]int{}
	for seq := uint64(0); seq < last; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatalf("read the LMS stream: %v", err)
		}
		got := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			seq = md.Sequence.Stream
			msgIDs[m.Headers().Get(nats.MsgIdHdr)]++
			ceIDs[m.Headers().Get("ce-id")]++
			events++
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("read the LMS stream: %v", err)
		}
		if got == 0 {
			t.Fatalf("the LMS stream ended at sequence %d of %d", seq, last)
		}
	}
	if uint64(events) != info.State.Msgs {
		t.Errorf("read %d events of the LMS stream's %d", events, info.State.Msgs)
	}
	for id, n := range msgIDs {
		if n > 1 || id == "" {
			dupMsgIDs = append(dupMsgIDs, fmt.Sprintf("%q×%d", id, n))
		}
	}
	for id, n := range ceIDs {
		if n > 1 || id == "" {
			dupCEIDs = append(dupCEIDs, fmt.Sprintf("%q×%d", id, n))
		}
	}
	return events, dupMsgIDs, dupCEIDs
}

// token is a short random word that keeps this run's job ids unique.
func token(rng *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
