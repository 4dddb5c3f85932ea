// Command fetcher runs the fetch stage of skolebuss: it takes export jobs
// from JetStream, fetches each tenant's PIFU export from the upstream within
// the applications' rate limits and quotas, stores it in the object store and
// announces it to the publisher. Run with --help for the flags.
package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/daemon"
)

const usageText = `Usage: fetcher [flags]

Runs the fetch stage: takes export jobs from the JOBS stream (jobs.export.<tenant>),
gets a token per application and tenant, fetches the tenant's PIFU export and
streams it into the object store "exports", then publishes
exports.fetched.<tenant> for the publisher. Run as many fetchers as you like
against one NATS server or cluster: they share the jobs, the applications'
rate limits and quotas (in JetStream key-value buckets) and every 429's
Retry-After. Jobs that fail permanently (refused credentials, scope or tenant,
403, 404) go to the DLQ stream (skolebuss replay --seq N sends one again).

The configuration is one YAML file (--config; without it the sandbox demo's
configuration), then SKOLEBUSS_* environment variables, then these flags.
NATS: the fetcher connects to --nats-url, else the config's nats.url, else the
embedded server's address from the config (nats://127.0.0.1:4222 by default),
where "skolebuss demo", a requester or a fetcher started with --embedded, or a
nats-server with JetStream, serves. --embedded runs that server in this
process instead (file storage in nats.embedded.data_dir). Streams and stores
are created or updated at start, idempotently.

SIGINT or SIGTERM stops it cleanly: no new jobs are taken, downloads in flight
may finish within --drain (the rest are cut and handed back to another
fetcher), telemetry is flushed and the connection drained.

Flags:
`

func main() { daemon.Main(stage.Name, stage.Run) }

var stage = daemon.Daemon{Name: "fetcher", Usage: usageText, Setup: setup}

func setup(fs *flag.FlagSet) (func() error, func(context.Context, app.Runtime) (daemon.Stage, error)) {
	var o app.StageOptions
	fs.DurationVar(&o.AckWait, "ack-wait", 30*time.Second, "how long a job stays with a fetcher that stopped answering, before another takes it")
	fs.IntVar(&o.Concurrency, "concurrency", 4, "jobs this fetcher works on at once")
	fs.IntVar(&o.MaxInFlight, "max-in-flight", 16, "jobs in flight across all fetchers (the consumer's max ack pending)")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "how long downloads in flight may finish at shutdown")
	return nil, func(ctx context.Context, rt app.Runtime) (daemon.Stage, error) {
		f, err := app.NewFetcher(rt, o)
		if err != nil {
			return nil, err
		}
		rt.Logger.Info("fetching", "applications", len(f.Config.Applications), "concurrency", o.Concurrency)
		return f, nil
	}
}

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	return stage.Run(ctx, args, stderr, getenv)
}
