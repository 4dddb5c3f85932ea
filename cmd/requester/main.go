// Command requester runs the requester stage of skolebuss: it puts an export
// job for every configured tenant on JetStream at each of the tenant's
// schedule slots. Run with --help for the flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/daemon"
)

const usageText = `Usage: requester [flags]

Requests an export of every tenant of the configuration on its schedule
(tenants[].schedule: an interval, and a jitter that spreads tenants over the
start of each slot): one job per tenant and slot on jobs.export.<tenant>, for
the fetchers. Each job's Nats-Msg-Id is its tenant and slot, so several
requesters (replicas) store one job per slot. A requester that starts after a
slot's time requests that slot at once; within the JOBS stream's duplicate
window (1h) that collapses with what was already requested. Each job starts a
trace that the fetcher and the publisher continue.
On-demand jobs: skolebuss export --tenant ID. Replays: skolebuss replay --seq N.

The configuration is one YAML file (--config; without it the sandbox demo's
configuration), then SKOLEBUSS_* environment variables, then these flags.
NATS: the requester connects to --nats-url, else the config's nats.url, else
the embedded server's address from the config (nats://127.0.0.1:4222 by
default). --embedded runs that server in this process instead, for the
fetchers and publishers to connect to (file storage in nats.embedded.data_dir).
Streams and stores are created or updated at start, idempotently.

SIGINT or SIGTERM stops it cleanly: no further jobs, telemetry flushed, the
connection drained.

Flags:
`

func main() { daemon.Main(stage.Name, stage.Run) }

var stage = daemon.Daemon{Name: "requester", Usage: usageText, NATSOnly: true, Setup: setup}

func setup(*flag.FlagSet) (func() error, func(context.Context, app.Runtime) (daemon.Stage, error)) {
	return nil, func(ctx context.Context, rt app.Runtime) (daemon.Stage, error) {
		r, err := app.NewRequester(rt)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", daemon.ErrUsage, err)
		}
		return r, nil
	}
}

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	return stage.Run(ctx, args, stderr, getenv)
}
