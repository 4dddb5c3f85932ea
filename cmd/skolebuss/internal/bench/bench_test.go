package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"testing"
	"time"
)

// envDaemon makes this test binary a publisher daemon: it runs the stage
// for an export that never comes, until SIGINT, as cmd/publisher would.
const envDaemon = "SKOLEBUSS_BENCH_TEST_DAEMON"

func TestMain(m *testing.M) {
	if url := os.Getenv(envDaemon); url != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		_, err := RunStage(ctx, StageConfig{NATSURL: url, ExportID: "never", SpoolDir: os.TempDir()}, nil)
		stop()
		if err != nil && !errors.Is(err, context.Canceled) {
			os.Stderr.WriteString(err.Error())
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunDaemon measures the tiny size with a publisher that does not stop
// by itself (Launcher.Daemon): the bench interrupts it after each export.
func TestRunDaemon(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	started := 0
	rep, err := Run(ctx, Config{Size: "tiny", DataDir: t.TempDir(), Timeout: 30 * time.Second, FanoutVendors: []int{1, 3}, Publisher: Launcher{
		Daemon: true,
		Command: func(natsURL, exportID, spoolDir string) *exec.Cmd {
			started++
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), envDaemon+"="+natsURL)
			return cmd
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Runs[0]
	if started != 2 || f.Events == 0 || f.Events != f.Records || f.EventRate <= 0 || f.RawRate <= 0 || f.Reexport <= 0 || f.Parse <= 0 {
		t.Errorf("%d processes; figures %+v", started, f)
	}
	if f.FirstDiffed != 0 {
		t.Errorf("a daemon prints no outcome, yet the diff took %s", f.FirstDiffed)
	}
	if f.PeakRSSFirst <= 0 || f.PeakRSSReexport <= 0 {
		t.Errorf("peak RSS %d and %d: sampled before the interrupt, it must be known", f.PeakRSSFirst, f.PeakRSSReexport)
	}
	// The fan-out: each vendor gets at most one event per change of the
	// first export, and vendors of the same profiles the same count.
	if len(f.Fanout) != 2 {
		t.Fatalf("fan-out figures %+v, want for 1 and 3 vendors", f.Fanout)
	}
	for i, n := range []int{1, 3} {
		ff := f.Fanout[i]
		if ff.Vendors != n || ff.Events <= 0 || ff.Events > n*f.Events || ff.Took <= 0 || ff.EventRate <= 0 ||
			ff.RawRate <= 0 || ff.RateRatio != ff.EventRate/ff.RawRate {
			t.Errorf("fan-out to %d vendors: %+v (first export %d events)", n, ff, f.Events)
		}
	}
	if f.Fanout[1].Events != 3*f.Fanout[0].Events {
		t.Errorf("3 vendors stored %d events, 1 vendor %d", f.Fanout[1].Events, f.Fanout[0].Events)
	}
	if len(rep.Median.Fanout) != 2 || rep.Median.Fanout[1] != f.Fanout[1] {
		t.Errorf("median of one run %+v, run %+v", rep.Median.Fanout, f.Fanout)
	}
}

// TestRunPublisherFails reports a publisher process that dies, with what it
// said.
func TestRunPublisherFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Run(ctx, Config{Size: "tiny", DataDir: t.TempDir(), Timeout: 30 * time.Second, Publisher: Launcher{
		Command: func(string, string, string) *exec.Cmd {
			return exec.Command("sh", "-c", "echo cannot reach the server >&2; exit 3")
		},
	}})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the server") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("error %v; want the process's exit and its last words", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{DataDir: "x", Publisher: Launcher{Command: func(string, string, string) *exec.Cmd { return nil }}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, c := range map[string]Config{
		"size":      {Size: "huge", DataDir: "x", Publisher: ok.Publisher},
		"data dir":  {Publisher: ok.Publisher},
		"repeat":    {Repeat: -1, DataDir: "x", Publisher: ok.Publisher},
		"publisher": {DataDir: "x"},
		"timeout":   {Timeout: -time.Second, DataDir: "x", Publisher: ok.Publisher},
		"vendors":   {FanoutVendors: []int{1, 0}, DataDir: "x", Publisher: ok.Publisher},
		"too many":  {FanoutVendors: []int{MaxFanoutVendors + 1}, DataDir: "x", Publisher: ok.Publisher},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error for %+v", name, c)
		}
	}
}

func TestMedianAndChecks(t *testing.T) {
	runs := []Figures{
		{Events: 10, EventRate: 100, RawRate: 200, RateRatio: 0.5, Reexport: 3 * time.Second, Parse: 2 * time.Second, ReexportRatio: 1.5, PeakRSS: 100 << 20},
		{Events: 10, EventRate: 300, RawRate: 310, RateRatio: 0.97, Reexport: 1 * time.Second, Parse: 2 * time.Second, ReexportRatio: 0.5, PeakRSS: 400 << 20},
		{Events: 10, EventRate: 200, RawRate: 250, RateRatio: 0.8, Reexport: 2 * time.Second, Parse: 2 * time.Second, ReexportRatio: 1.0, PeakRSS: 200 << 20},
	}
	m := median(runs)
	if m.EventRate != 200 || m.RawRate != 250 || m.RateRatio != 0.8 || m.Reexport != 2*time.Second || m.ReexportRatio != 1 || m.PeakRSS != 200<<20 || m.Events != 10 {
		t.Errorf("median of three: %+v", m)
	}
	if m := median(runs[:2]); m.EventRate != 200 || m.Reexport != 2*time.Second || m.PeakRSS != 250<<20 {
		t.Errorf("median of two: %+v", m)
	}
	r := Report{Checks: checks(m)}
	if !r.Passed() {
		t.Errorf("every figure within target, yet %+v", r.Checks)
	}
	// The fan-out: medians per vendor count; checked for 10 vendors only.
	fo := func(r1, r10 float64) []FanoutFigures {
		return []FanoutFigures{{Vendors: 1, RateRatio: r1}, {Vendors: 10, RateRatio: r10}}
	}
	runs[0].Fanout, runs[1].Fanout, runs[2].Fanout = fo(0.1, 0.6), fo(0.3, 0.9), fo(0.2, 0.75)
	m = median(runs)
	if len(m.Fanout) != 2 || m.Fanout[0].RateRatio != 0.2 || m.Fanout[1].RateRatio != 0.75 || m.Fanout[1].Vendors != 10 {
		t.Errorf("fan-out medians %+v", m.Fanout)
	}
	r = Report{Checks: checks(m)}
	if len(r.Checks) != 4 || r.Checks[3].Name != FanoutCheckName(10) || !r.Passed() {
		t.Errorf("checks %+v", r.Checks)
	}
	m.Fanout[1].RateRatio = 0.69
	if r := (Report{Checks: checks(m)}); r.Passed() {
		t.Errorf("fan-out to 10 vendors at 0.69 passed: %+v", r.Checks)
	}
	for _, c := range []struct {
		f    Figures
		fail string
	}{
		{Figures{RateRatio: 0.69, ReexportRatio: 1, PeakRSS: 1}, "event rate / raw rate"},
		{Figures{RateRatio: 0.7, ReexportRatio: 1.51, PeakRSS: 1}, "unchanged re-export / parse"},
		{Figures{RateRatio: 0.7, ReexportRatio: 1.5, PeakRSS: TargetPeakRSS}, "publisher peak RSS"},
		{Figures{RateRatio: 0.7, ReexportRatio: 1.5, PeakRSS: 0}, "publisher peak RSS"}, // unknown is no pass
	} {
		r := Report{Checks: checks(c.f)}
		for _, ch := range r.Checks {
			if ch.Pass == (ch.Name == c.fail) {
				t.Errorf("%+v: check %q pass=%v", c.f, ch.Name, ch.Pass)
			}
		}
		if r.Passed() {
			t.Errorf("%+v passed", c.f)
		}
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 8}
	for _, s := range []string{"abc", "defgh", "ijklmnop", "q"} {
		_, _ = tl.Write([]byte(s))
	}
	if got := tl.String(); got != "jklmnopq" {
		t.Errorf("tail %q", got)
	}
}

func TestStageOutcomeJSON(t *testing.T) {
	s := &stage{stdout: nil}
	if _, ok := s.outcome(); ok {
		t.Error("an outcome without output")
	}
	b, _ := json.Marshal(StageOutcome{ExportID: "e", Events: 3, Diffed: time.Second, PeakRSS: 5})
	s = &stage{stdout: bytes.NewBufferString("some line\n" + string(b) + "\n")}
	if o, ok := s.outcome(); !ok || o.Events != 3 || o.Diffed != time.Second || o.PeakRSS != 5 {
		t.Errorf("outcome %+v %v", o, ok)
	}
}
