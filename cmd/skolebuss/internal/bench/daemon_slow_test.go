//go:build slow

package bench

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestLargeExportThroughput measures the publisher binary, run as its
// daemon, on the large municipality (the measurement of
// `skolebuss bench`): its first export (events per second, against the raw
// asynchronous publish rate of messages of the same size on the same
// server), an unchanged re-export (against parsing the export alone), and
// the process's peak RSS. Run it with
//
//	go test -tags slow -run TestLargeExportThroughput -v -timeout 20m ./cmd/skolebuss/internal/bench/
//
// SKOLEBUSS_BENCH_PRESET picks another size; SKOLEBUSS_BENCH_GOGC sets GOGC
// for the publisher alone.
func TestLargeExportThroughput(t *testing.T) {
	preset := os.Getenv("SKOLEBUSS_BENCH_PRESET")
	if preset == "" {
		preset = "large"
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "publisher")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/skolebuss/skolebuss/cmd/publisher").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		Size: preset, DataDir: filepath.Join(dir, "runs"), Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Publisher: Launcher{Daemon: true, Command: func(natsURL, _, spoolDir string) *exec.Cmd {
			cmd := exec.Command(bin, "--nats-url", natsURL, "--ack-wait", "60s")
			cmd.Env = append(os.Environ(), "SKOLEBUSS_SPOOL_DIR="+spoolDir)
			if g := os.Getenv("SKOLEBUSS_BENCH_GOGC"); g != "" {
				cmd.Env = append(cmd.Env, "GOGC="+g) // the publisher's only, not the server's
			}
			return cmd
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Median
	t.Logf("first export: %d events in %s: %.0f events/s", f.Events, f.First, f.EventRate)
	t.Logf("raw async publish, %d messages of %d bytes with Nats-Msg-Id: %.0f msgs/s; ratio %.2f",
		f.Events, f.EventBytes, f.RawRate, f.RateRatio)
	t.Logf("unchanged re-export: %s; parse alone %s (%d records): ratio %.2f", f.Reexport, f.Parse, f.Records, f.ReexportRatio)
	t.Logf("publisher peak RSS %.1f MiB (first export %.1f, re-export %.1f)",
		float64(f.PeakRSS)/(1<<20), float64(f.PeakRSSFirst)/(1<<20), float64(f.PeakRSSReexport)/(1<<20))
	if f.Events != f.Records {
		t.Errorf("%d events for a first export of %d records", f.Events, f.Records)
	}
	if f.PeakRSS >= TargetPeakRSS {
		t.Errorf("peak RSS %d MiB, not under %d MiB", f.PeakRSS>>20, TargetPeakRSS>>20)
	}
}

// testWriter sends the bench's progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-min(1, len(p))]))
	return len(p), nil
}
