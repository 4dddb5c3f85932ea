package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/daemon"
)

func init() {
	register(command{
		name:    "vendors nats-config",
		summary: "write the NATS users of the configured LMS vendors: each may read its own stream only",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return vendorsNATSConfig(args, stdout, stderr, os.Getenv)
		},
	})
}

const vendorsNATSConfigHelp = `Usage: skolebuss vendors nats-config [--config FILE] [--stage-users] [-o FILE]

Writes the NATS users of the configuration's vendors as the users list of a
nats-server account, for the NATS server the pipeline runs on. The server
enforces what each may do: vendor V's user, "vendor-V", may read its own
stream VENDOR_V (vendor.V.<tenant>.>) through consumers, publish on its own
request subjects vendorreq.V.resync.<tenant> (its resync requests, which the
fan-out answers) and receive on its own inbox prefix _INBOX_V.>
(its clients set that prefix, nats.CustomInboxPrefix("_INBOX_V")); nothing
else. Another vendor's events, the canonical LMS stream, the jobs, the
exports, the dead letters, the alerts and the stores are refused to it, by
subscription, consumer, direct get or stream info alike.

The output is the account's "users" key; include it inside the account's
block of the server's configuration:

    accounts {
      SKOLEBUSS {
        jetstream: enabled
        include ./vendors.conf
      }
    }

A key given twice in a block keeps the later value, and an include stands
only where a key may (not inside a list), so the file holds every user of
the account: with --stage-users the pipeline's own users come first, as
the distributed deployment runs them (deploy/nats/users.conf is this
command's output for deploy/skolebuss.compose.yaml). Every user's rights
are rendered from one description (internal/natsauth, Identities):

  requester  publishes jobs; reads the info of JOBS
  fetcher    its durable consumer on JOBS; writes the object store exports
             and the buckets quota, ratelimit and attempts; publishes
             exported, dead-letter and quota-alert events
  publisher  its durable consumer on EXPORTS; reads LMS (last message,
             ordered consumers); writes the object stores exports (its
             deletions) and snapshots and the bucket attempts; publishes
             events and dead letters
  fanout     its durable per vendor on LMS; writes each vendor's stream and
             the object store fanout; reads snapshots and exports for
             resyncs; answers the vendors' resync requests
  provision  reads, creates and updates every stream, store and bucket
             (skolebuss provision); deletes, purges and reads nothing
  operator   every right in the account

No stage may create, update, delete or restore a stream, delete a message
or purge anything but an object store it writes; each receives on its own
inbox prefix only, _INBOX_<USER> in upper case (_INBOX_FETCHER), which the
stages set themselves when they connect as these users, so none reads
another's replies. Their passwords are in the variables REQUESTER_PASSWORD,
FETCHER_PASSWORD, PUBLISHER_PASSWORD, FANOUT_PASSWORD, PROVISION_PASSWORD
and OPERATOR_PASSWORD. Without --stage-users, give the account's other users
no list of their own there.

No password is written. Each vendor's is read by the server, when it loads
its configuration, from an environment variable named after the vendor:
SKOLEBUSS_VENDOR_<NAME>_PASSWORD, the name upper-cased with '-' as '_'
(vendor itslearning-demo: SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD). The
variable may hold the password or its bcrypt hash (nats server passwd); a
variable that is not set stops the server from starting.

The embedded server (skolebuss demo, a daemon's --embedded) enforces the
same users by itself when the configuration has vendors; this file is for a
NATS server run from its own configuration, as deploy/ runs one.

The configuration is --config FILE (default: the sandbox demo's, with its two
demo vendors), then SKOLEBUSS_* variables. With -o FILE the file is written
whole or not at all; without it, to standard output.

Flags:
`

func vendorsNATSConfig(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("skolebuss vendors nats-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "the skolebuss YAML `FILE` (default: the sandbox demo's configuration)")
	out := fs.String("o", "", "write to `FILE` instead of standard output")
	stages := fs.Bool("stage-users", false, "write the users of the pipeline's stages and the operator too, before the vendors'")
	fs.Usage = func() { fmt.Fprint(stderr, vendorsNATSConfigHelp); fs.PrintDefaults() }
	if err := daemon.ParseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := daemon.LoadFile(*configFile)
	if err != nil {
		return err
	}
	if err := cfg.Apply(getenv); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(cfg.Vendors) == 0 {
		return fmt.Errorf("%w: %s has no vendors", errUsage, configName(cfg))
	}
	var b bytes.Buffer
	if err := app.WriteNATSUsers(&b, cfg, *stages); err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(b.Bytes())
		return err
	}
	if _, err := writeWhole(*out, &b, io.Discard); err != nil {
		return err
	}
	// The NATS server may run as another user: the file names variables
	// and bcrypt hashes, no password.
	return os.Chmod(*out, 0o644)
}
