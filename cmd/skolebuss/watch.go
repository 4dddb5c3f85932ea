package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/skolebuss/skolebuss/cmd/skolebuss/internal/demo"
)

func init() {
	register(command{
		name:    "watch",
		summary: "follow the change events as a demo LMS vendor: apply them to a copy of each tenant and check it",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return watchCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const watchHelp = `Usage: skolebuss watch [flags]

Runs the demo LMS vendor against a running pipeline: it reads the LMS stream
from its first event, applies every created/updated/deleted event to its own
copy of each tenant, and prints a line per export started and completed,
saying whether its copy then had exactly the counts and the state checksum
that export.completed announced. Ctrl-C stops it. Use it to watch the
daemons at work when they run as separate processes.

The configuration (for tenant names and NATS) is --config FILE (default: the
sandbox demo's), then SKOLEBUSS_* variables, then the flags.

Flags:
`

func watchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("skolebuss watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o opsFlags
	o.register(fs)
	consumer := fs.String("consumer", "watch", "the durable consumer `NAME` of this watcher on the LMS stream")
	fs.Usage = func() { fmt.Fprint(stderr, watchHelp); fs.PrintDefaults() }
	if err := parseOps(fs, args); err != nil {
		return err
	}
	cfg, nc, js, err := o.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Fprintln(stdout, "watching the LMS stream; Ctrl-C stops")
	err = demo.Watch(ctx, js, cfg, *consumer, stdout, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if ctx.Err() != nil {
		return nil
	}
	return explainBus(err)
}
