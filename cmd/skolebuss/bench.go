package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skolebuss/skolebuss/cmd/skolebuss/internal/bench"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

func init() {
	register(command{
		name:    "bench",
		summary: "measure the pipeline against its targets (event rate, unchanged re-export, publisher RSS, fan-out to vendors)",
		run:     benchCmd,
	})
}

// stageFlag runs the publisher process of a measurement (the command
// re-executes itself with it). It is not in the help: it is no user's
// business.
const stageFlag = "--publisher-stage"

// stageProfileEnv, when set in the bench command's environment, makes each
// publisher process write a CPU profile to <value>.<export id>.cpu: the way
// to see where the publisher's time goes in the measurement itself.
const stageProfileEnv = "SKOLEBUSS_BENCH_CPUPROFILE"

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stageProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", stageProfileEnv, err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

const benchHelp = `Usage: skolebuss bench [flags]

Measures the pipeline against its performance targets, both sides in one run
on the same embedded JetStream server:

  - starts an embedded JetStream server (a fresh data directory per run) and
    the sandbox upstream on a loopback port with one tenant of --size;
  - fetches the tenant's export into the object store through the fetch
    stage (token, export, object store, FetchedExport);
  - the first export: the publisher stage, in a process of its own (this
    binary again), turns it into one created event per record; its time runs
    from the FetchedExport to the export.completed event, as the server
    stored them. The event rate is set against the raw rate of asynchronous
    JetStream publishes of as many messages of the events' average stored
    size, with unique Nats-Msg-Id, on the same server. Target: 0.7 or more;
  - an unchanged re-export (the same bytes fetched again, a new export id and
    object) through a new publisher process, against the time to parse the
    same export alone (in this process). Target: 1.5 or less;
  - the publisher processes' peak RSS (the larger of the two). Target: under
    300 MiB;
  - the fan-out stage (in this process) delivering the first export to
    --fanout-vendors new vendors at once (roster and roster + contact
    profiles in turn): vendor events stored per second, summed over the
    vendors, from the stage's start to the last vendor's export.completed as
    the server stored it, against the raw rate of as many messages (at most a
    million) of the vendor events' average size, measured right after it on
    the same server. Target for 10 vendors: 0.7 or more.

It prints a table of the figures with PASS or FAIL against each target, the
machine and the date; --json prints the report as JSON instead. With
--repeat N the measurements run N times and the figures are the medians.
Progress goes to standard error. The exit status is 0 even when a figure
misses its target, unless --strict (then 1); 2 for bad flags.

A large run takes several minutes (the fan-out to 1, 3 and 10 vendors
stores 14 copies of the first export, one vendor count at a time) and a few
GB of disk while it runs; --size medium is a quick one, --fanout-vendors none
leaves the fan-out out.

Flags:
`

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == stageFlag {
		return benchStage(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("skolebuss bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	size := fs.String("size", "large", "municipality size preset of the tenant: "+strings.Join(rostergen.Presets, ", "))
	repeat := fs.Int("repeat", 1, "run the measurements `N` times and report the medians")
	dataDir := fs.String("data-dir", "", "`DIR` for the server's storage and the spool, a subdirectory per run removed after it (default: a temporary directory)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	strict := fs.Bool("strict", false, "exit 1 when a figure misses its target")
	timeout := fs.Duration("timeout", 20*time.Minute, "the longest one export may take through the publisher")
	quiet := fs.Bool("quiet", false, "no progress on standard error")
	fanoutVendors := fs.String("fanout-vendors", "1,3,10", "measure the fan-out to each of these vendor `COUNTS` (comma-separated), or none")
	fs.Usage = func() { fmt.Fprint(stderr, benchHelp); fs.PrintDefaults() }
	if err := daemon.ParseFlags(fs, args, daemon.Range{Flag: "repeat", Min: 1, Max: 100}); err != nil {
		return err
	}
	if !slices.Contains(rostergen.Presets, *size) {
		return fmt.Errorf("%w: --size %q: one of %s", errUsage, *size, strings.Join(rostergen.Presets, ", "))
	}
	counts, err := parseVendorCounts(*fanoutVendors)
	if err != nil {
		return fmt.Errorf("%w: --fanout-vendors: %v", errUsage, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program to run the publisher: %w", err)
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "skolebuss-bench-*"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	rep, err := bench.Run(ctx, bench.Config{
		Size: *size, DataDir: dir, Repeat: *repeat, Timeout: *timeout, FanoutVendors: counts,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Publisher: bench.Launcher{Command: func(natsURL, exportID, spoolDir string) *exec.Cmd {
			return exec.Command(exe, "bench", stageFlag, "--nats-url", natsURL, "--export-id", exportID, "--spool-dir", spoolDir)
		}},
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printBench(stdout, rep)
	}
	if *strict && !rep.Passed() {
		return errors.New("a figure missed its target (--strict)")
	}
	return nil
}

// benchStage is the publisher process of a measurement: it runs the
// publisher stage until its export is done and prints the outcome as one
// JSON line.
func benchStage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("skolebuss bench "+stageFlag, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.StageConfig
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "the measurement's server")
	fs.StringVar(&cfg.ExportID, "export-id", "", "the export after which to stop")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", "", "the diff's temporary files")
	fs.IntVar(&cfg.Window, "window", 0, "events waiting for their acknowledgement at once (0: the publisher's default)")
	if err := daemon.ParseFlags(fs, args, daemon.Range{Flag: "window", Min: 0, Max: daemon.MaxFlagCount}); err != nil {
		return err
	}
	if cfg.NATSURL == "" || cfg.ExportID == "" {
		return fmt.Errorf("%w: %s needs --nats-url and --export-id and nothing else", errUsage, stageFlag)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if prefix := os.Getenv(stageProfileEnv); prefix != "" {
		stop, err := startCPUProfile(fmt.Sprintf("%s.%s.cpu", prefix, cfg.ExportID))
		if err != nil {
			return err
		}
		defer stop()
	}
	out, err := bench.RunStage(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(out)
}

// printBench writes the report as a table.
func printBench(w io.Writer, r *bench.Report) {
	m := r.Median
	what := "1 run"
	if r.Repeat > 1 {
		what = fmt.Sprintf("%d runs, medians", r.Repeat)
	}
	fmt.Fprintf(w, "skolebuss bench: size %s, %s, %s\n", r.Size, what, r.Started.Format(time.RFC3339))
	mc := r.Machine
	cpu := ""
	if mc.CPU != "" {
		cpu = " (" + mc.CPU + ")"
	}
	fmt.Fprintf(w, "machine: %d cores%s, GOMAXPROCS %d, %s %s/%s, load average %s before, %s after\n",
		mc.Cores, cpu, mc.GOMAXPROCS, mc.GoVersion, mc.OS, mc.Arch, orNA(mc.LoadAvg), orNA(mc.LoadAvgAfter))
	fmt.Fprintf(w, "export: %s records, %.1f MB, fetched into the object store in %s\n\n",
		thousands(int64(m.Records)), float64(m.ExportBytes)/1e6, m.Fetch.Round(time.Millisecond))

	verdict := map[string]string{}
	for _, c := range r.Checks {
		verdict[c.Name] = "FAIL"
		if c.Pass {
			verdict[c.Name] = "PASS"
		}
		verdict[c.Name+"/target"] = c.Target
	}
	row := func(tw io.Writer, name, value string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, value, verdict[name+"/target"], verdict[name])
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tresult")
	row(tw, "events (first export)", thousands(int64(m.Events)))
	row(tw, "first export", fmt.Sprintf("%s (diff %s)", m.First.Round(time.Millisecond), m.FirstDiffed.Round(time.Millisecond)))
	row(tw, "event rate", thousands(int64(m.EventRate))+" events/s")
	row(tw, "raw publish rate", fmt.Sprintf("%s msgs/s of %d B", thousands(int64(m.RawRate)), m.EventBytes))
	row(tw, "event rate / raw rate", fmt.Sprintf("%.2f", m.RateRatio))
	row(tw, "unchanged re-export", m.Reexport.Round(time.Millisecond).String())
	row(tw, "parse alone", m.Parse.Round(time.Millisecond).String())
	row(tw, "unchanged re-export / parse", fmt.Sprintf("%.2f", m.ReexportRatio))
	row(tw, "publisher peak RSS", fmt.Sprintf("%.1f MiB (first %.1f, re-export %.1f)",
		mib(m.PeakRSS), mib(m.PeakRSSFirst), mib(m.PeakRSSReexport)))
	for _, ff := range m.Fanout {
		row(tw, fmt.Sprintf("fan-out to %d vendors", ff.Vendors), fmt.Sprintf("%s vendor events/s (%s events in %s; raw %s msgs/s)",
			thousands(int64(ff.EventRate)), thousands(int64(ff.Events)), ff.Took.Round(time.Millisecond), thousands(int64(ff.RawRate))))
		row(tw, bench.FanoutCheckName(ff.Vendors), fmt.Sprintf("%.2f", ff.RateRatio))
	}
	_ = tw.Flush()

	if len(r.Runs) > 1 {
		fmt.Fprintln(w, "\nruns:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "run\tevents/s\traw msgs/s\tratio\tre-export\tparse\tratio\tpeak RSS MiB\t")
		for i, f := range r.Runs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%s\t%s\t%.2f\t%.1f\t\n", i+1, thousands(int64(f.EventRate)), thousands(int64(f.RawRate)),
				f.RateRatio, f.Reexport.Round(time.Millisecond), f.Parse.Round(time.Millisecond), f.ReexportRatio, mib(f.PeakRSS))
		}
		_ = tw.Flush()
		if len(m.Fanout) > 0 {
			fmt.Fprintln(w, "\nfan-out runs (vendor events/s, ratio to the raw rate beside it):")
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprint(tw, "run\t")
			for _, ff := range m.Fanout {
				fmt.Fprintf(tw, "%d vendors\tratio\t", ff.Vendors)
			}
			fmt.Fprintln(tw)
			for i, f := range r.Runs {
				fmt.Fprintf(tw, "%d\t", i+1)
				for _, ff := range f.Fanout {
					fmt.Fprintf(tw, "%s\t%.2f\t", thousands(int64(ff.EventRate)), ff.RateRatio)
				}
				fmt.Fprintln(tw)
			}
			_ = tw.Flush()
		}
	}
	result := "every figure met its target"
	if !r.Passed() {
		result = "a figure missed its target"
	}
	fmt.Fprintf(w, "\n%s\n", result)
}

// parseVendorCounts reads --fanout-vendors: comma-separated counts from 1
// to bench.MaxFanoutVendors, or "none" for no fan-out (an empty list).
func parseVendorCounts(s string) ([]int, error) {
	counts := []int{}
	if strings.TrimSpace(s) == "none" {
		return counts, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > bench.MaxFanoutVendors {
			return nil, fmt.Errorf("%q is not a vendor count from 1 to %d (or give none)", f, bench.MaxFanoutVendors)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
