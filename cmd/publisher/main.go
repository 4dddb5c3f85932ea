// Command publisher runs the publish stage of skolebuss: it turns fetched PIFU
// exports into change events. It consumes exports.fetched.<tenant>, diffs each
// export against the tenant's last snapshot and publishes the changes on
// lms.<tenant>.<entity>.<op>. Run with --help for the flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/publisher"
)

const usageText = `Usage: publisher [flags]

Runs the publish stage: consumes fetched exports (exports.fetched.<tenant>),
parses each stored export as a stream, diffs it against the tenant's last
snapshot and publishes the changes on lms.<tenant>.<entity>.<op> between
lms.<tenant>.export.started and lms.<tenant>.export.completed (counts per
entity and the checksum of the resulting state). Event ids are deterministic
and the snapshot is stored only after every event is, so a publisher killed
midway and started again publishes nothing twice. Exports are taken one at a
time across all publishers, so a tenant's exports apply in order.

An export that would delete more than publisher.delete_threshold of a tenant's
records (default 20%), or an empty one, goes to the DLQ stream with reason
deletion_held; "skolebuss replay --seq N --force" applies it. A document that
does not parse goes there too, with its line and column, and nothing of it is
published.

The configuration is one YAML file (--config; without it the sandbox demo's
configuration), then SKOLEBUSS_* environment variables, then these flags.
NATS: --nats-url, else the config's nats.url, else the embedded server's
address from the config (nats://127.0.0.1:4222 by default); --embedded runs
that server in this process instead.

SIGINT or SIGTERM stops it cleanly: no new export is taken, the one in hand
may finish within --drain (else it is handed back), telemetry is flushed and
the connection drained.

Flags:
`

func main() { daemon.Main("publisher", run) }

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := daemon.Flags{NATSOnly: true}
	d.Register(fs)
	ackWait := fs.Duration("ack-wait", 30*time.Second, "how long an export stays with a publisher that stopped answering, before another takes it")
	drain := fs.Duration("drain", 30*time.Second, "how long the export in hand may finish at shutdown")
	window := fs.Int("window", publisher.DefaultWindow, "change events that may wait for their acknowledgement at once")
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	if err := daemon.ParseFlags(fs, args); err != nil {
		return err
	}
	cfg, logger, err := d.Load(getenv, stderr)
	if err != nil {
		return err
	}
	rt, stop, err := d.Start(ctx, cfg, "skolebuss-publisher", logger)
	if err != nil {
		return err
	}
	defer stop()
	p, err := app.NewPublisher(rt, app.StageOptions{AckWait: *ackWait, Drain: *drain, Window: *window})
	if err != nil {
		return err
	}
	logger.Info("publisher started", "spool_dir", cfg.Publisher.SpoolDir, "delete_threshold", cfg.Publisher.DeleteThreshold)
	err = p.Run(ctx)
	logger.Info("publisher stopped")
	return err
}
