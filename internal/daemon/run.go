package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/skolebuss/skolebuss/internal/app"
)

// Stage is what a daemon runs: a built stage, until ctx ends.
type Stage interface {
	Run(ctx context.Context) error
}

// Daemon describes one skolebuss daemon; its Run is the whole body of the
// daemon's main, the same for every stage.
type Daemon struct {
	// Name is the daemon's name: its flag set's, its NATS connection's
	// ("skolebuss-" + Name) and its log lines'.
	Name string
	// Usage is the --help text before the flags.
	Usage string
	// NATSOnly is set by a daemon that never calls the upstream (see
	// Flags.NATSOnly).
	NATSOnly bool
	// Setup registers the daemon's own flags on fs and returns, for after
	// they are parsed, the check of their values (nil: nothing to check;
	// its error is a usage error) and how to build the stage from the
	// runtime (it may log what the stage starts with).
	Setup func(fs *flag.FlagSet) (check func() error, build func(ctx context.Context, rt app.Runtime) (Stage, error))
}

// Run parses args (the shared flags and the daemon's own), loads the
// configuration, starts NATS and telemetry, builds the stage and runs it
// until ctx ends; then it flushes telemetry and drains the connection. A
// bad command line or configuration is an error wrapping ErrUsage.
func (dm Daemon) Run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet(dm.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := Flags{NATSOnly: dm.NATSOnly}
	d.Register(fs)
	check, build := dm.Setup(fs)
	fs.Usage = func() { fmt.Fprint(stderr, dm.Usage); fs.PrintDefaults() }
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %v", ErrUsage, err)
		}
	}
	cfg, logger, err := d.Load(getenv, stderr)
	if err != nil {
		return err
	}
	rt, stop, err := d.Start(ctx, cfg, "skolebuss-"+dm.Name, logger)
	if err != nil {
		return err
	}
	defer stop()
	stage, err := build(ctx, rt)
	if err != nil {
		return err
	}
	logger.Info(dm.Name + " started")
	err = stage.Run(ctx)
	logger.Info(dm.Name + " stopped")
	return err
}
