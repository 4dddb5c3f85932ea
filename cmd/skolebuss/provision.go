package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
)

func init() {
	register(command{
		name:    "provision",
		summary: "create or update every stream, object store and bucket of the configuration (once at deploy, as the NATS user provision)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return provisionCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const provisionHelp = `Usage: skolebuss provision [--config FILE] [flags]

Creates the streams, object stores and key-value buckets of the
configuration on its NATS server, or updates them to it where they exist:
JOBS, EXPORTS, LMS, DLQ, ALERTS, the object stores exports and snapshots,
the buckets quota, ratelimit and attempts, each configured vendor's stream
VENDOR_<name> and the fan-out's object store fanout, with the replicas,
duplicate windows and ages of the configuration. It prints what it did to
each (created, updated or unchanged) and may be run again at any time:
what is already as configured is left as it is. A change the server cannot
make in place (a stream's retention) fails naming the stream.

The stages (requester, fetcher, publisher, fanout) do not create or change
streams when they connect as their own NATS users: they check that what they
need exists and stop, naming it and this command, when it does not. Run it
once at deploy, and again after adding a vendor or changing nats.replicas or
the duplicate window, as the NATS user "provision" (deploy/nats/users.conf),
whose only rights are reading, creating and updating the streams and stores:
it can neither delete nor purge them nor read a message. A process running
the embedded server (skolebuss demo, a daemon's --embedded) provisions by
itself and needs no run of this command.

Connection flags as for skolebuss export; the user is the configuration's
(nats.user, SKOLEBUSS_NATS_USER).

Flags:
`

func provisionCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss provision", provisionHelp, stderr)
	if err := parseOps(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, nc, js, err := o.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer nc.Close()
	changes, err := bus.ProvisionAll(ctx, js, app.BusConfig(cfg, "").Provision, app.VendorNames(cfg))
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "stream\tdone")
	n := 0
	for _, c := range changes {
		fmt.Fprintf(tw, "%s\t%s\n", c.Stream, c.Action)
		if c.Action != "unchanged" {
			n++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d of %d streams and stores created or updated\n", n, len(changes))
	return nil
}
