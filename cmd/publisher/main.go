// Command publisher runs the publish stage of skolebuss: it turns fetched PIFU
// exports into change events. It consumes exports.fetched.<tenant>, diffs each
// export against the tenant's last snapshot and publishes the changes on
// lms.<tenant>.<entity>.<op>. Run with --help for the flags.
package main

import (
	"context"
	"flag"
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
records (default 20%), or an empty one (a tenant's first export too, unless
the state applied before is itself empty), goes to the DLQ stream with reason
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

func main() { daemon.Main(stage.Name, stage.Run) }

var stage = daemon.Daemon{Name: "publisher", Usage: usageText, NATSOnly: true, Setup: setup}

func setup(fs *flag.FlagSet) (func() error, func(context.Context, app.Runtime) (daemon.Stage, error)) {
	var o app.StageOptions
	fs.DurationVar(&o.AckWait, "ack-wait", 30*time.Second, "how long an export stays with a publisher that stopped answering, before another takes it")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "how long the export in hand may finish at shutdown")
	fs.IntVar(&o.Window, "window", publisher.DefaultWindow, "change events that may wait for their acknowledgement at once")
	return nil, func(ctx context.Context, rt app.Runtime) (daemon.Stage, error) {
		p, err := app.NewPublisher(rt, o)
		if err != nil {
			return nil, err
		}
		c := rt.Config.Publisher
		rt.Logger.Info("publishing", "spool_dir", c.SpoolDir, "delete_threshold", c.DeleteThreshold)
		return p, nil
	}
}

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	return stage.Run(ctx, args, stderr, getenv)
}
