package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/skolebuss/skolebuss/cmd/skolebuss/internal/demo"
	"github.com/skolebuss/skolebuss/internal/app"
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

With --vendor NAME it reads that vendor's own stream (VENDOR_<NAME>, which
the fan-out writes: its tenants only, cut to its profile) instead, and checks
its copy against the vendor's own export.completed: what that vendor sees.

The configuration (for tenant names and NATS) is --config FILE (default: the
sandbox demo's), then SKOLEBUSS_* variables, then the flags.

Flags:
`

func watchCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss watch", watchHelp, stderr)
	vendor := fs.String("vendor", "", "read the configured vendor `NAME`'s own stream instead of the canonical LMS stream")
	if err := parseOps(fs, args); err != nil {
		return err
	}
	cfg, err := o.load(getenv)
	if err != nil {
		return err
	}
	what := "the LMS stream"
	if *vendor != "" {
		if _, ok := cfg.Vendor(*vendor); !ok {
			return fmt.Errorf("%w: --vendor %q is not a vendor of %s (known: %s)", errUsage, *vendor, configName(cfg), strings.Join(app.VendorNames(cfg), ", "))
		}
		what = "vendor " + *vendor + "'s stream"
	}
	nc, js, err := o.connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Fprintf(stdout, "watching %s; Ctrl-C stops\n", what)
	err = demo.Watch(ctx, js, cfg, *vendor, stdout, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if ctx.Err() != nil {
		return nil
	}
	return explainBus(err)
}
