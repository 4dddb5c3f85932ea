package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Run is a daemon's entry point below main: it gets the arguments after the
// program name, where to log, and how to read the environment.
type Run func(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error

// Main runs run under one root context that SIGINT and SIGTERM cancel, and
// exits: 0 on success or --help, 2 for an error in the command line or the
// configuration (ErrUsage), 1 for any other error. It is the only place a
// daemon calls os.Exit.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, os.Getenv)
	stop()
	os.Exit(ExitCode(name, err, os.Stderr))
}

// ExitCode reports err on w (prefixed with name) and returns the exit status
// Main uses for it.
func ExitCode(name string, err error, w io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(w, name+":", err)
		return 2
	default:
		fmt.Fprintln(w, name+":", err)
		return 1
	}
}

// ParseFlags parses args with fs and allows no positional argument: it
// returns flag.ErrHelp for -h or --help (fs has printed its usage), and an
// ErrUsage naming what is wrong for a bad flag, an argument, or a duration
// or count out of its range (CheckNumbers, with ranges for the flags whose
// range differs from the default).
func ParseFlags(fs *flag.FlagSet, args []string, ranges ...Range) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	return CheckNumbers(fs, ranges...)
}
