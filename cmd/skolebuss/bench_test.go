package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/cmd/skolebuss/internal/bench"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// envChild makes this test binary behave as the skolebuss binary: the
// bench command re-executes os.Executable() (here, the test binary) to run
// its publisher process.
const envChild = "SKOLEBUSS_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// tinyRecords counts the records of the export the bench's sandbox serves
// for size tiny, independently of the bench: generated and parsed here.
func tinyRecords(t *testing.T) int {
	t.Helper()
	sizes, err := rostergen.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{TenantID: bench.Tenant, Name: bench.TenantName, Seed: 11, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := m.WriteExport(context.Background(), &doc, 0); err != nil {
		t.Fatal(err)
	}
	d := pifu.NewDecoder(&doc)
	n := 0
	for {
		if _, err := d.Next(); errors.Is(err, io.EOF) {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv(envChild, "1") // for the publisher processes only: this one is past TestMain
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, append([]string{"bench"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestBenchJSON(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runBench(t, "--size", "tiny", "--repeat", "2", "--json", "--data-dir", dir, "--fanout-vendors", "none")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, out)
	}
	if rep.Size != "tiny" || rep.Repeat != 2 || len(rep.Runs) != 2 {
		t.Fatalf("size %q, repeat %d, %d runs; want tiny, 2, 2", rep.Size, rep.Repeat, len(rep.Runs))
	}
	records := tinyRecords(t)
	for i, f := range append(rep.Runs, rep.Median) {
		what := "median"
		if i < len(rep.Runs) {
			what = "run " + string(rune('1'+i))
		}
		switch {
		case f.Records != records:
			t.Errorf("%s: %d records, the export has %d", what, f.Records, records)
		case f.Events != records:
			t.Errorf("%s: %d events of a first export of %d records (one created event each)", what, f.Events, records)
		case f.ExportBytes <= 0 || f.EventBytes < 100:
			t.Errorf("%s: export %d bytes, events of %d bytes", what, f.ExportBytes, f.EventBytes)
		case f.First <= 0 || f.EventRate <= 0 || f.RawRate <= 0:
			t.Errorf("%s: first export %s, %v events/s, raw %v msgs/s: all must be positive", what, f.First, f.EventRate, f.RawRate)
		case math.Abs(f.EventRate-float64(f.Events)/f.First.Seconds()) > 1e-6*f.EventRate && i < len(rep.Runs):
			t.Errorf("%s: event rate %v is not %d events in %s", what, f.EventRate, f.Events, f.First)
		case f.RateRatio <= 0 || f.ReexportRatio <= 0 || f.Reexport <= 0 || f.Parse <= 0:
			t.Errorf("%s: ratios %v, %v, re-export %s, parse %s: all must be positive", what, f.RateRatio, f.ReexportRatio, f.Reexport, f.Parse)
		case f.FirstDiffed <= 0 || f.FirstDiffed >= f.First:
			t.Errorf("%s: diff %s of a first export of %s", what, f.FirstDiffed, f.First)
		case f.PeakRSS <= 1<<20 || f.PeakRSS > 2<<30 || f.PeakRSS != max(f.PeakRSSFirst, f.PeakRSSReexport) && i < len(rep.Runs):
			t.Errorf("%s: peak RSS %d (first %d, re-export %d)", what, f.PeakRSS, f.PeakRSSFirst, f.PeakRSSReexport)
		}
	}
	if len(rep.Checks) != 3 || len(rep.Median.Fanout) != 0 {
		t.Fatalf("%d checks, want 3 (no fan-out asked): %+v; fan-out %+v", len(rep.Checks), rep.Checks, rep.Median.Fanout)
	}
	if c := rep.Checks[2]; c.Pass != (rep.Median.PeakRSS < bench.TargetPeakRSS) {
		t.Errorf("RSS check %+v for a peak of %d bytes", c, rep.Median.PeakRSS)
	}
	if m := rep.Machine; m.Cores != runtime.NumCPU() || m.GoVersion != runtime.Version() || rep.Started.IsZero() {
		t.Errorf("machine %+v, started %s", m, rep.Started)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the data directory keeps %d entries (the runs' storage must go)", len(left))
	}
	if !strings.Contains(errs, "run done") {
		t.Errorf("no progress on standard error:\n%s", errs)
	}
}

func TestBenchTable(t *testing.T) {
	code, out, errs := runBench(t, "--size", "tiny", "--quiet", "--repeat", "2", "--fanout-vendors", "2,10")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	for _, want := range []string{
		"size tiny, 2 runs, medians", time.Now().UTC().Format("2006-01-02"), "machine: ", runtime.Version(), "load average",
		"events (first export)", "event rate", "raw publish rate", "event rate / raw rate", ">= 0.7",
		"unchanged re-export", "parse alone", "unchanged re-export / parse", "<= 1.5", "publisher peak RSS", "< 300 MiB",
		"fan-out to 2 vendors", "fan-out to 10 vendors", "vendor events/s", "fan-out to 10 vendors / raw rate",
		"fan-out runs", "2 vendors", "10 vendors",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "PASS") + strings.Count(out, "FAIL"); n != 4 {
		t.Errorf("%d verdicts, want 4 (the fan-out's for 10 vendors only):\n%s", n, out)
	}
	if errs != "" {
		t.Errorf("--quiet printed:\n%s", errs)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"--size", "huge"}, {"--repeat", "0"}, {"--timeout", "-1s"}, {"extra"}, {"--nope"},
		{"--fanout-vendors", "0"}, {"--fanout-vendors", "1,x"}, {"--fanout-vendors", ""}} {
		if code, _, errs := runBench(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
	code, _, help := runBench(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, flag := range []string{"-size", "-repeat", "-data-dir", "-json", "-strict", "-timeout", "-quiet", "-fanout-vendors"} {
		if !strings.Contains(help, flag) {
			t.Errorf("--help does not explain %s", flag)
		}
	}
	if strings.Contains(help, stageFlag) {
		t.Errorf("--help shows the internal %s", stageFlag)
	}
}
