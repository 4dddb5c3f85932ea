// Command fanout runs the fan-out stage of skolebuss: it delivers the
// canonical change events of the LMS stream to each configured LMS vendor's
// own stream, VENDOR_<vendor>, on vendor.<vendor>.<tenant>.<entity>.<op>:
// only the vendor's tenants, each record cut to the vendor's profile. Run
// with --help for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/daemon"
)

const usageText = `Usage: fanout [flags]

Runs the fan-out stage: for every vendor in the configuration's vendors, it
takes each export of the vendor's linked tenants once the canonical export is
whole (its lms.<tenant>.export.completed), and publishes it to the vendor's
own stream VENDOR_<vendor> on vendor.<vendor>.<tenant>.<entity>.<op>, between
vendor.<vendor>.<tenant>.export.started and .export.completed, in the same
per-tenant order. Each record is cut to the vendor's profile (roster always;
contact, demographics, guardians and national_id only when the profile names
them): a record the profile removes entirely is not sent, nor an update that
changes only removed fields. The boundaries carry the vendor's own counts and
the checksum of the state the vendor holds. A vendor whose user may read only
its own stream (skolebuss vendors nats-config) never sees another vendor's
tenants, nor the canonical LMS stream.

A vendor that has no state of a linked tenant with exported state (a new
vendor, a newly linked tenant) gets a resync of it instead of the LMS
stream's history: the tenant's current state (its last applied export, read
from the object stores "snapshots" and "exports"), cut to the vendor's
profile, as created events between boundaries marked "resync": true; the
exports after it follow. A tenant's first export is delivered as it is. A
vendor asks for a resync itself with a request on
vendorreq.<vendor>.resync.<tenant> (answered, in the queue group "fanout",
only on a reply subject under the vendor's inbox prefix _INBOX_<vendor>), an
operator with skolebuss vendors resync. A resync is stored before it is
accepted and done by the vendor's loop between two exports, also after a
restart.

Event ids are a hash of the canonical event's id and the vendor, and what
each vendor holds is stored (object store "fanout") before the export is
acknowledged, so a fan-out killed midway and started again redoes the export
and the vendor's stream stores nothing twice. Each vendor has its own durable
consumer (fanout-<vendor>); several fan-out processes share them, but
nothing yet keeps two from working on one vendor at once, so a resync done
by one can interleave with an export of the same tenant delivered by
another: run one fan-out process.

The configuration is one YAML file (--config; without it the sandbox demo's
configuration, with its two demo vendors), then SKOLEBUSS_* environment
variables, then these flags. NATS: --nats-url, else the config's nats.url,
else the embedded server's address from the config (nats://127.0.0.1:4222 by
default); --embedded runs that server in this process instead.

SIGINT or SIGTERM stops it cleanly: no new export is taken, the export in
hand is handed back at once (the next run redoes it with the same ids),
telemetry is flushed and the connection drained.

Flags:
`

func main() { daemon.Main(stage.Name, stage.Run) }

var stage = daemon.Daemon{Name: "fanout", Usage: usageText, NATSOnly: true, Setup: setup}

func setup(fs *flag.FlagSet) (func() error, func(context.Context, app.Runtime) (daemon.Stage, error)) {
	var o app.StageOptions
	fs.DurationVar(&o.AckWait, "ack-wait", time.Minute, "how long an export stays with a fan-out that stopped answering, before another takes it")
	fs.IntVar(&o.Window, "window", 4096, "vendor events that may wait for their acknowledgement at once")
	check := func() error {
		if o.AckWait <= 0 || o.Window <= 0 {
			return errors.New("--ack-wait and --window must be positive")
		}
		return nil
	}
	return check, func(ctx context.Context, rt app.Runtime) (daemon.Stage, error) {
		f, err := app.NewFanout(ctx, rt, o)
		if err != nil {
			return nil, err
		}
		if len(rt.Config.Vendors) == 0 {
			rt.Logger.Warn("no vendors in the configuration: nothing to deliver")
		}
		rt.Logger.Info("delivering", "vendors", app.VendorNames(rt.Config))
		return f, nil
	}
}

func run(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	return stage.Run(ctx, args, stderr, getenv)
}
