package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

func noenv(string) string { return "" }

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, &out, noenv)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"-config FILE", "-nats-url URL", "-nats-creds FILE", "-log-level", "-embedded", "SIGTERM", "DLQ", "Retry-After"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("environment: sandbox\nnats:\n  replicas: many\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", bad}, "bad.yaml:3"},
		{[]string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, "none.yaml"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--embedded", "--nats-url", "nats://127.0.0.1:1"}, "--embedded"},
		{[]string{"extra"}, "unexpected argument"},
		// Checked before anything connects: no server listens at :1.
		{[]string{"--drain", "-1s", "--nats-url", "nats://127.0.0.1:1"}, "--drain -1s"},
		{[]string{"--ack-wait", "0s", "--nats-url", "nats://127.0.0.1:1"}, "--ack-wait 0s"},
		{[]string{"--concurrency", "-2", "--nats-url", "nats://127.0.0.1:1"}, "--concurrency -2"},
		{[]string{"--max-in-flight", "0", "--nats-url", "nats://127.0.0.1:1"}, "--max-in-flight 0"},
		{[]string{"--nats-url", "nats://fetcher:hunter2@127.0.0.1:1"}, "--nats-user"},
	} {
		err := run(context.Background(), c.args, io.Discard, noenv)
		if !errors.Is(err, daemon.ErrUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want a usage error naming %q", c.args, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: the error shows the password: %v", c.args, err)
		}
	}
	// No server where the config points: a clear error, no hang.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := run(ctx, []string{"--nats-url", "nats://127.0.0.1:1"}, io.Discard, noenv)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable NATS: %v", err)
	}
}

// A fetcher killed in the middle of a download (not shut down) gives its
// job up after the ack wait; another fetcher completes it, and exactly one
// FetchedExport exists; the publisher then leaves the vendor's copy equal to
// the sandbox's export, each event stored once. Builds the command, so it is
// skipped with -short.
func TestKilledFetcherHandsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs cmd/fetcher (about 10-20s)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fetcher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	quiet := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	b := bustest.Open(t)
	sc := sandbox.DemoConfig()
	sb, err := sandbox.New(sc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	tenant := sandbox.DemoTenantFjordvik
	want := directExport(t, srv.URL, tenant)

	cfgFile := filepath.Join(dir, "skolebuss.yaml")
	yaml := fmt.Sprintf(`environment: sandbox
upstream:
  token_url: %[1]s/connect/token
  api_base: %[1]s
applications:
  - name: skolebuss-demo
    client_id: skolebuss-demo
    client_secret_env: TEST_FETCHER_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - id: %[2]s
    name: Fjordvik
    application: skolebuss-demo
`, srv.URL, tenant)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *bytes.Buffer) {
		var logs bytes.Buffer
		cmd := exec.Command(bin, "--config", cfgFile, "--nats-url", b.Conn.ConnectedUrl(), "--ack-wait", "2s", "--log-level", "debug")
		cmd.Env = append(os.Environ(), "TEST_FETCHER_SECRET="+sandbox.DemoClientSecret)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &logs
	}

	// The export trickles out over about four seconds.
	if err := sb.SetFaults(tenant, sandbox.Faults{SlowBody: len(want)/4 + 1}); err != nil {
		t.Fatal(err)
	}
	first, logs1 := start()
	r, err := requester.New(b.JS, requester.Config{Tenants: []requester.Tenant{{ID: tenant, Application: "skolebuss-demo"}}}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	job, err := r.RequestNow(ctx, tenant, "killed")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first fetcher to start downloading", func() bool { return sb.StatsSnapshot().Applications[sandbox.DemoClientID].Served >= 1 })
	// Part of the body is in: the object store holds chunks of the download.
	waitfor.Condition(t, 20*time.Second, func() error {
		if n := streamMsgs(t, b.JS, "OBJ_"+bus.ObjectExports); n == 0 {
			return errors.New("no chunk of the download is stored")
		}
		return nil
	})
	if n := len(fetched(t, b.JS)); n != 0 {
		t.Fatalf("%d fetched exports before the kill: the download was not midway", n)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	if _, err := b.Stores.Exports.GetInfo(ctx, tenant+"/killed.xml"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("a partial export is visible after the kill: %v", err)
	}

	if err := sb.SetFaults(tenant, sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	_, logs2 := start()
	waitFor(t, 30*time.Second, "the second fetcher to complete the job", func() bool { return len(fetched(t, b.JS)) >= 1 })
	// The job is acknowledged, gone from the work queue: no fetcher
	// announces it again.
	waitfor.Condition(t, 10*time.Second, func() error {
		if n := streamMsgs(t, b.JS, bus.StreamJobs); n != 0 {
			return fmt.Errorf("%d jobs in the work queue", n)
		}
		return nil
	})
	fes := fetched(t, b.JS)
	if len(fes) != 1 {
		t.Fatalf("%d fetched exports, want exactly 1", len(fes))
	}
	if fes[0].JobID != job.Job.JobID || fes[0].Size != int64(len(want)) {
		t.Errorf("fetched export %+v, want job %s with %d bytes", fes[0], job.Job.JobID, len(want))
	}
	got, err := b.Stores.Exports.GetBytes(ctx, fes[0].Object)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("stored export differs from the sandbox's (%d vs %d bytes, %v)", len(got), len(want), err)
	}
	if st := sb.StatsSnapshot().Applications[sandbox.DemoClientID]; st.Served != 3 { // direct + killed + second
		t.Errorf("sandbox served %d exports, want 3", st.Served)
	}

	// The publisher takes the one fetched export to the vendor: its copy is
	// the sandbox's export, and every event is stored once.
	vendorCopyIsTheExport(t, b, fes[0], want)
	if t.Failed() {
		t.Logf("first fetcher:\n%s\nsecond fetcher:\n%s", logs1, logs2)
	}
}

func fetched(t *testing.T, js jetstream.JetStream) []messages.FetchedExport {
	t.Helper()
	var out []messages.FetchedExport
	for _, m := range bustest.Msgs(t, js, bus.StreamExports) {
		fe, err := messages.Decode[messages.FetchedExport](bustest.NATSMsg(m))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fe)
	}
	return out
}

func directExport(t *testing.T, base, tenant string) []byte {
	t.Helper()
	src, err := auth.New(auth.Config{TokenURL: base + sandbox.PathToken, Applications: []auth.Application{{
		Name: "d", ClientID: sandbox.DemoClientID, ClientSecret: sandbox.DemoClientSecret, Scopes: []string{sandbox.ScopeLMSExport}}}},
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background(), auth.Key{App: "d", Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+flytapi.DefaultExportPath, nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Condition(t, d, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// streamMsgs is the number of messages stream holds.
func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// vendorCopyIsTheExport runs the publisher stage and a vendor on b until the
// vendor has applied fe, and checks that the vendor's copy is doc, record
// for record, and that the LMS stream holds each of the export's events once.
func vendorCopyIsTheExport(t *testing.T, b *bus.Bus, fe messages.FetchedExport, doc []byte) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	pub, err := publisher.New(b.Conn, b.Stores.Exports, b.Stores.Snapshots,
		publisher.Config{Diff: diff.Config{SpoolDir: t.TempDir()}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vendorcopy.New(b.JS, vendorcopy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := pub.Run(ctx, b.JS, publisher.WorkerConfig(), quiet, nil); err != nil {
			t.Errorf("publisher: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := v.Run(ctx); err != nil {
			t.Errorf("vendor: %v", err)
		}
	}()
	st, err := v.WaitFor(ctx, fe.Tenant, fe.ExportID)
	if err != nil || !st.Matched {
		t.Fatalf("vendor: %+v, %v", st, err)
	}

	want := map[pifu.Entity]map[string][]byte{}
	records := 0
	d := pifu.NewDecoder(bytes.NewReader(doc))
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if want[rec.Entity()] == nil {
			want[rec.Entity()] = map[string][]byte{}
		}
		if _, dup := want[rec.Entity()][rec.Key()]; dup {
			continue
		}
		obj, err := json.Marshal(rec.Object())
		if err != nil {
			t.Fatal(err)
		}
		want[rec.Entity()][rec.Key()] = obj
		records++
	}
	got := v.Copy(fe.Tenant)
	for _, e := range pifu.Entities {
		if len(got[e]) != len(want[e]) {
			t.Errorf("%s: %d records in the vendor's copy, %d in the export", e, len(got[e]), len(want[e]))
		}
		for k, obj := range want[e] {
			if !bytes.Equal(got[e][k], obj) {
				t.Fatalf("%s %s differs in the vendor's copy", e, k)
			}
		}
	}

	ids := map[string]bool{}
	for _, m := range bustest.Msgs(t, b.JS, bus.StreamLMS) {
		id := m.Header.Get(messages.HeaderID)
		if ids[id] {
			t.Errorf("event %s stored twice", id)
		}
		ids[id] = true
	}
	if len(ids) != records+2 {
		t.Errorf("the LMS stream has %d events; the export has %d records (+2 boundaries)", len(ids), records)
	}
}
