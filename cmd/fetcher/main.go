// Command fetcher runs the fetch stage of skolebuss: it takes export jobs
// from JetStream, fetches each tenant's PIFU export from the upstream within
// the applications' rate limits and quotas, stores it in the object store and
// announces it to the publisher. Run with --help for the flags.
package main

import (
	"context"
	"flag"
	"fmt"
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

func main() { daemon.Main("fetcher", run) }

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("fetcher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d daemon.Flags
	d.Register(fs)
	ackWait := fs.Duration("ack-wait", 30*time.Second, "how long a job stays with a fetcher that stopped answering, before another takes it")
	concurrency := fs.Int("concurrency", 4, "jobs this fetcher works on at once")
	inFlight := fs.Int("max-in-flight", 16, "jobs in flight across all fetchers (the consumer's max ack pending)")
	drain := fs.Duration("drain", 30*time.Second, "how long downloads in flight may finish at shutdown")
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	if err := daemon.ParseFlags(fs, args); err != nil {
		return err
	}
	cfg, logger, err := d.Load(getenv, stderr)
	if err != nil {
		return err
	}
	rt, stop, err := d.Start(ctx, cfg, "skolebuss-fetcher", logger)
	if err != nil {
		return err
	}
	defer stop()
	f, err := app.NewFetcher(rt, app.StageOptions{AckWait: *ackWait, Concurrency: *concurrency, MaxInFlight: *inFlight, Drain: *drain})
	if err != nil {
		return err
	}
	logger.Info("fetcher started", "applications", len(f.Config.Applications), "concurrency", *concurrency)
	err = f.Run(ctx)
	logger.Info("fetcher stopped")
	return err
}
