// Package bench measures the pipeline against its performance targets: on one
// embedded JetStream server and in one run, the publisher stage's event rate
// for a municipality's first export against the raw asynchronous publish
// rate of as many messages of the same size, the time of an unchanged
// re-export against the time to parse the export alone, and the publisher's
// peak RSS.
//
// The publisher runs as a process of its own (a Launcher says how to start
// it), so its peak RSS is its own and not the server's or the sandbox's.
// Everything else (the embedded server, the sandbox upstream, the fetch
// stage's handler, the raw publisher, the fan-out and the parse) runs in the calling
// process, one side at a time: the publisher process is idle or gone while
// the raw rate and the parse are measured.
//
// Durations of the pipeline are taken from the server's own timestamps:
// from the stored time of the FetchedExport message to the stored time of
// the export's export.completed event.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"time"

	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// The pipeline's performance targets: the event rate against raw JetStream,
// an unchanged re-export against parsing alone, and the publisher's peak RSS.
const (
	// TargetRateRatio is the least share of the raw publish rate the
	// first export's event rate must reach.
	TargetRateRatio = 0.7
	// TargetReexportRatio is the most an unchanged re-export may take, as a
	// multiple of parsing the export alone.
	TargetReexportRatio = 1.5
	// TargetPeakRSS is the publisher's peak resident set size must stay
	// under, in bytes.
	TargetPeakRSS = 300 << 20
	// TargetFanoutRatio is the least share of the raw publish rate the
	// fan-out to TargetFanoutVendors vendors must reach, in vendor events
	// stored per second summed over the vendors.
	TargetFanoutRatio   = 0.7
	TargetFanoutVendors = 10
)

// DefaultFanoutVendors are the vendor counts the fan-out is measured with.
var DefaultFanoutVendors = []int{1, 3, 10}

// Config says what to measure. The zero value of a field with a default
// takes it.
type Config struct {
	// Size is the rostergen preset of the one tenant the sandbox serves:
	// tiny, small, medium or large. Default large.
	Size string
	// DataDir is where each run keeps its JetStream storage and the
	// publisher's spool, in a fresh directory run-<n> removed after the run.
	// Required.
	DataDir string
	// Repeat is how many times the measurements run; the report has every
	// run and the median of each figure. Default 1.
	Repeat int
	// Publisher starts the publisher stage as a process. Required.
	Publisher Launcher
	// FanoutVendors are the vendor counts the first export is fanned out
	// to, one measurement each, half the vendors with the roster profile
	// and half with roster and contact. Nil: DefaultFanoutVendors; empty:
	// no fan-out measured.
	FanoutVendors []int
	// Timeout bounds one export's processing, from starting the publisher
	// process to its exit. Default 20 minutes.
	Timeout time.Duration
	// Logger gets a line per step (info) and what goes wrong. Default:
	// discard.
	Logger *slog.Logger
}

// MaxFanoutVendors is the most vendors one fan-out measurement may have.
const MaxFanoutVendors = 50

// Launcher starts the publisher stage as a process of its own.
type Launcher struct {
	// Command returns the process that runs the publisher stage
	// (publisher.WorkerConfig's consumer) against the server at natsURL,
	// for the export exportID; spoolDir is a directory it may use for the
	// diff's temporary files. Run starts the command and owns the process.
	// If its Stdout is nil, Run reads it for a StageOutcome (RunStage's
	// answer, as JSON on the last line); a process that prints none just
	// leaves Run.FirstDiffed zero.
	Command func(natsURL, exportID, spoolDir string) *exec.Cmd
	// Daemon says the process does not stop by itself after the export:
	// Run interrupts it (SIGINT) once the export's message is acknowledged.
	// Otherwise the process must exit by itself then, as RunStage does.
	Daemon bool
}

func (c Config) withDefaults() Config {
	if c.Size == "" {
		c.Size = "large"
	}
	if c.Repeat == 0 {
		c.Repeat = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Minute
	}
	if c.FanoutVendors == nil {
		c.FanoutVendors = DefaultFanoutVendors
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field that is wrong, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !slices.Contains(rostergen.Presets, c.Size):
		return fmt.Errorf("bench: size %q: %w (known: %v)", c.Size, rostergen.ErrUnknownPreset, rostergen.Presets)
	case c.DataDir == "":
		return errors.New("bench: DataDir is required")
	case c.Repeat < 1 || c.Repeat > 100:
		return fmt.Errorf("bench: repeat %d out of range 1..100", c.Repeat)
	case c.Publisher.Command == nil:
		return errors.New("bench: Publisher.Command is required")
	case c.Timeout < 0:
		return fmt.Errorf("bench: timeout %s is negative", c.Timeout)
	}
	for _, n := range c.FanoutVendors {
		if n < 1 || n > MaxFanoutVendors {
			return fmt.Errorf("bench: fan-out to %d vendors: from 1 to %d", n, MaxFanoutVendors)
		}
	}
	return nil
}

// Run measures cfg.Repeat times and returns the report with every run and
// the medians. It starts the sandbox once (on a loopback port) and a fresh
// embedded server for every run. Cancelling ctx stops the run in progress
// (its publisher process is killed) and returns ctx's error; an error in any
// run ends the whole measurement with it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	up, err := startUpstream(cfg.Size, quieter(cfg.Logger))
	if err != nil {
		return nil, err
	}
	defer up.close()

	rep := &Report{Size: cfg.Size, Repeat: cfg.Repeat, Machine: machine(), Started: time.Now().UTC().Truncate(time.Second)}
	for i := 1; i <= cfg.Repeat; i++ {
		r, err := measure(ctx, cfg, up, i)
		if err != nil {
			return nil, fmt.Errorf("run %d of %d: %w", i, cfg.Repeat, err)
		}
		cfg.Logger.Info("run done", "run", i, "events", r.Events, "event_rate", int(r.EventRate), "raw_rate", int(r.RawRate),
			"reexport", r.Reexport.Round(time.Millisecond), "parse", r.Parse.Round(time.Millisecond), "peak_rss_mib", r.PeakRSS>>20)
		rep.Runs = append(rep.Runs, r)
	}
	rep.Machine.LoadAvgAfter = loadAvg()
	rep.Median = median(rep.Runs)
	rep.Checks = checks(rep.Median)
	return rep, nil
}

// quieter is logger without its info and debug lines: the parts the bench
// runs (server, sandbox, fetch stage) say only what goes wrong, the bench
// itself says every step.
func quieter(logger *slog.Logger) *slog.Logger {
	return slog.New(warnOnly{logger.Handler()})
}

type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(a)} }
func (h warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{h.Handler.WithGroup(n)} }
