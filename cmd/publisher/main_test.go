package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const tenant = "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"

func TestHelpAndBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"-nats-url", "-config", "-log-level", "-ack-wait", "deletion_held", "--force"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
	if err := run(context.Background(), []string{"--log-level", "loud"}, io.Discard, noEnv); !errors.Is(err, daemon.ErrUsage) || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("bad log level: %v", err)
	}
	if err := run(context.Background(), []string{"--config", "no/such/file.yaml"}, io.Discard, noEnv); !errors.Is(err, daemon.ErrUsage) || !strings.Contains(err.Error(), "no/such/file.yaml") {
		t.Errorf("missing config: %v", err)
	}
	// Checked before anything connects: no server listens at :1.
	for flag, value := range map[string]string{"--drain": "-1s", "--ack-wait": "0s", "--window": "-5"} {
		err := run(context.Background(), []string{flag, value, "--nats-url", "nats://127.0.0.1:1"}, io.Discard, noEnv)
		if !errors.Is(err, daemon.ErrUsage) || !strings.Contains(err.Error(), flag+" "+value) {
			t.Errorf("%s %s: %v, want a usage error naming the flag", flag, value, err)
		}
	}
}

// TestKilledMidwayAndRestartedPublishesEveryEventOnce runs the real binary
// against an embedded server, kills it (SIGKILL) while it publishes a first
// export, starts it again after the LMS stream's duplicate window (1 s in
// its configuration) has passed, and checks the result: the vendor's copy
// is the export, and every event is in the LMS stream exactly once.
func TestKilledMidwayAndRestartedPublishesEveryEventOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "publisher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := bustest.Open(t)
	v, err := vendorcopy.New(b.JS, vendorcopy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vdone := make(chan error, 1)
	go func() { vdone <- v.Run(ctx) }()
	defer func() { cancel(); <-vdone }()

	// A medium municipality's first export, stored as a fetcher stores it.
	sizes, _ := rostergen.Preset("medium")
	muni, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Måneby kommune", Seed: 3, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := muni.WriteExport(ctx, &doc, 0); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(doc.Bytes())
	fe := messages.FetchedExport{JobID: "job-1", ExportID: "export-1", Tenant: tenant, Application: "skolebuss-demo",
		Object: tenant + "/export-1", Size: int64(doc.Len()), SHA256: hex.EncodeToString(sum[:]), FetchedAt: time.Now().UTC()}
	if _, err := b.Stores.Exports.Put(ctx, jetstream.ObjectMeta{Name: fe.Object}, bytes.NewReader(doc.Bytes())); err != nil {
		t.Fatal(err)
	}
	m, err := messages.Encode(fe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	lms, err := b.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		info, err := lms.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	// The configuration: the demo's, with a duplicate window of a second.
	const window = time.Second
	cfgFile := filepath.Join(dir, "skolebuss.yaml")
	if err := os.WriteFile(cfgFile, []byte(`environment: sandbox
nats:
  duplicate_window: 1s
upstream:
  token_url: http://127.0.0.1:1/connect/token
  api_base: http://127.0.0.1:1
applications:
  - name: skolebuss-demo
    client_id: skolebuss-demo
    client_secret_env: TEST_UNUSED_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - id: `+tenant+`
    name: Måneby
    application: skolebuss-demo
`), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--config", cfgFile, "--nats-url", b.Conn.ConnectedUrl(), "--ack-wait", "2s", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "SKOLEBUSS_SPOOL_DIR="+filepath.Join(dir, "spool"))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	first := start()
	deadline := time.Now().Add(30 * time.Second)
	for stored() < 2000 {
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatal("the publisher published nothing")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := stored()
	if st, _ := v.Status(tenant); st.LastExport == fe.ExportID {
		t.Fatalf("the export completed before the kill (%d messages): the test proves nothing", atKill)
	}
	if info, err := lms.Info(ctx); err != nil || info.Config.Duplicates != window {
		t.Fatalf("the LMS stream's duplicate window is not the configuration's %s: %+v, %v", window, info, err)
	}
	afterTheWindow(t, b.JS, window)

	second := start()
	defer func() {
		_ = second.Process.Signal(os.Interrupt)
		if err := second.Wait(); err != nil {
			t.Errorf("the restarted publisher did not stop cleanly: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	st, err := v.WaitFor(wctx, tenant, fe.ExportID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Matched {
		t.Fatalf("the vendor's copy does not match: %s", st.Mismatch)
	}
	t.Logf("killed at %d of %d messages; the vendor applied %d events, skipped %d redeliveries",
		atKill, stored(), st.Applied, st.Duplicates)

	// The copy is the export, record for record.
	want := map[pifu.Entity]map[string]json.RawMessage{}
	records := 0
	d := pifu.NewDecoder(bytes.NewReader(doc.Bytes()))
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if want[rec.Entity()] == nil {
			want[rec.Entity()] = map[string]json.RawMessage{}
		}
		if _, dup := want[rec.Entity()][rec.Key()]; dup {
			continue
		}
		obj, _ := json.Marshal(rec.Object())
		want[rec.Entity()][rec.Key()] = obj
		records++
	}
	got := v.Copy(tenant)
	for e, recs := range want {
		if len(got[e]) != len(recs) {
			t.Errorf("%s: %d in the copy, %d in the export", e, len(got[e]), len(recs))
		}
		for k, obj := range recs {
			if !bytes.Equal(got[e][k], obj) {
				t.Fatalf("%s %s differs", e, k)
			}
		}
	}

	// Every event is in the stream exactly once: records + 2 boundaries.
	ids := map[string]int{}
	cons, err := lms.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	total := int(stored())
	for n := 0; n < total; {
		batch, err := cons.FetchNoWait(4096)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			ids[m.Headers().Get(messages.HeaderID)]++
			got++
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages", n, total)
		}
		n += got
	}
	if total != records+2 || len(ids) != total {
		t.Errorf("the stream has %d messages with %d distinct ids; the export has %d records (+2 boundaries)", total, len(ids), records)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
}

// afterTheWindow returns once a duplicate window of length window has
// passed for every message stored so far: a probe published now on a stream
// with that window is stored again, not dropped as a duplicate, only then.
func afterTheWindow(t *testing.T, js jetstream.JetStream, window time.Duration) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"},
		Storage: jetstream.MemoryStorage, Duplicates: window}); err != nil {
		t.Fatal(err)
	}
	probe := &nats.Msg{Subject: "probe.window", Header: nats.Header{messages.HeaderMsgID: []string{nuid.Next()}}}
	if ack, err := js.PublishMsg(ctx, probe); err != nil || ack.Duplicate {
		t.Fatalf("probe: %+v, %v", ack, err)
	}
	waitfor.Condition(t, 10*window, func() error {
		ack, err := js.PublishMsg(ctx, probe)
		if err != nil {
			return err
		}
		if ack.Duplicate {
			return errors.New("the duplicate window has not passed")
		}
		return nil
	})
}

func noEnv(string) string { return "" }
