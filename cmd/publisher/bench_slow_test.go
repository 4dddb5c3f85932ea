//go:build slow

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// TestLargeExportThroughput measures the publisher binary on the large
// municipality: its first export (events per second, against the raw
// asynchronous publish rate of messages of the same size on the same
// server), an unchanged re-export (against parsing the export alone), and
// the process's peak RSS. Run it with
//
//	go test -tags slow -run TestLargeExportThroughput -v -timeout 20m ./cmd/publisher/
func TestLargeExportThroughput(t *testing.T) {
	preset := os.Getenv("SKOLEBUSS_BENCH_PRESET")
	if preset == "" {
		preset = "large"
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "publisher")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{Embedded: bus.EmbeddedConfig{DataDir: filepath.Join(dir, "nats"), Port: -1}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())

	sizes, _ := rostergen.Preset(preset)
	muni, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Storby kommune", Seed: 11, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string) messages.FetchedExport {
		pr, pw := io.Pipe()
		go func() {
			_, err := muni.WriteExport(ctx, pw, 0)
			pw.CloseWithError(err)
		}()
		h := sha256.New()
		name := tenant + "/" + id
		info, err := b.Stores.Exports.Put(ctx, jetstream.ObjectMeta{Name: name}, io.TeeReader(pr, h))
		if err != nil {
			t.Fatal(err)
		}
		fe := messages.FetchedExport{JobID: "job-" + id, ExportID: id, Tenant: tenant, Application: "skolebuss-demo",
			Object: name, Size: int64(info.Size), SHA256: hex.EncodeToString(h.Sum(nil)), FetchedAt: time.Now().UTC()}
		m, err := messages.Encode(fe)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		return fe
	}

	cmd := exec.Command(bin, "--nats-url", b.Server.ClientURL(), "--ack-wait", "60s")
	cmd.Env = append(os.Environ(), "SKOLEBUSS_SPOOL_DIR="+filepath.Join(dir, "spool"))
	if g := os.Getenv("SKOLEBUSS_BENCH_GOGC"); g != "" {
		cmd.Env = append(cmd.Env, "GOGC="+g) // the publisher's only, not the server's
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan map[string]string, 4)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, `msg="export published"`) || strings.Contains(line, "level=ERROR") {
				done <- fields(line)
			}
		}
	}()
	wait := func() map[string]string {
		select {
		case f := <-done:
			if f["events"] == "" {
				t.Fatalf("publisher: %v", f)
			}
			return f
		case <-time.After(10 * time.Minute):
			t.Fatal("no export published")
		}
		return nil
	}

	t0 := time.Now()
	first := put("export-1")
	t.Logf("export stored: %d bytes in %s", first.Size, time.Since(t0).Round(time.Millisecond))
	f1 := wait()
	events, _ := strconv.Atoi(f1["events"])
	took1, _ := time.ParseDuration(f1["took"])
	diffed1, _ := time.ParseDuration(f1["diffed"])

	second := put("export-2")
	f2 := wait()
	took2, _ := time.ParseDuration(f2["took"])
	rss := peakRSS(t, cmd.Process.Pid)
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()

	// Parse alone, from the same object store.
	obj, err := b.Stores.Exports.Get(ctx, second.Object)
	if err != nil {
		t.Fatal(err)
	}
	p0 := time.Now()
	d := pifu.NewDecoder(obj)
	n := 0
	for {
		if _, err := d.Next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
	parse := time.Since(p0)
	obj.Close()

	// The raw rate with messages of the events' average stored size.
	lms, _ := b.JS.Stream(ctx, bus.StreamLMS)
	info, _ := lms.Info(ctx)
	avg := int(info.State.Bytes / info.State.Msgs)
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := bus.MeasureRawPublish(ctx, b.JS, "bench.raw", avg, events, bus.WithMsgID())
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(events) / took1.Seconds()
	pubRate := float64(events) / (took1 - diffed1).Seconds()
	t.Logf("first export: %d events in %s (diff %s, publish %s): %.0f events/s overall, %.0f/s while publishing",
		events, took1, diffed1, took1-diffed1, rate, pubRate)
	t.Logf("raw async publish, %d messages of %d bytes with Nats-Msg-Id: %.0f msgs/s; ratio %.2f overall, %.2f publishing",
		events, avg, raw, rate/raw, pubRate/raw)
	t.Logf("unchanged re-export: %s; parse alone %s (%d records): ratio %.2f", took2, parse, n, took2.Seconds()/parse.Seconds())
	t.Logf("publisher peak RSS %.1f MiB", float64(rss)/(1<<20))
	if rss > 300<<20 {
		t.Errorf("peak RSS %d MiB over 300 MiB", rss>>20)
	}
}

// fields parses a slog text line's key=value pairs.
func fields(line string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// peakRSS is VmHWM of a process, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
