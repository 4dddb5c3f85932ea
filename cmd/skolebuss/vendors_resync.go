package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
)

func init() {
	register(command{
		name:    "vendors resync",
		summary: "send one vendor the whole current state of one tenant again (a resync)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return vendorsResync(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const vendorsResyncHelp = `Usage: skolebuss vendors resync --vendor NAME --tenant ID [--reason TEXT] [flags]

Asks the fan-out to send vendor NAME the whole current state of tenant ID
again, as a vendor's own resync request (vendorreq.<vendor>.resync.<tenant>)
does: on the vendor's stream, an export.started with "resync": true, one
created event per record the vendor's profile lets it see, and an
export.completed with "resync": true, the counts and the checksum. The
vendor discards what it held of the tenant at that export.started. The
state is the tenant's last applied export, read from the object stores; the
upstream is not asked.

The resync is stored in the fan-out's object store and its id printed; a
running fan-out does it between two exports of the vendor (one started later
does it when it starts). The vendor must be in the configuration, the tenant
linked to it, and the tenant exported at least once.

` + opsConnectionHelp

func vendorsResync(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss vendors resync", vendorsResyncHelp, stderr)
	vendor := fs.String("vendor", "", "the vendor `NAME`; required")
	tenant := fs.String("tenant", "", "the tenant `ID`; required")
	reason := fs.String("reason", "operator", "why, as `TEXT` kept with the resync (at most 200 bytes)")
	if err := parseOps(fs, args); err != nil {
		return err
	}
	if *vendor == "" || *tenant == "" {
		return fmt.Errorf("%w: --vendor and --tenant are required", errUsage)
	}
	if err := messages.ValidateVendor(*vendor); err != nil {
		return fmt.Errorf("%w: --vendor: %v", errUsage, err)
	}
	var err error
	if *tenant, err = tenantFlag(*tenant); err != nil {
		return err
	}
	if err := (messages.ResyncRequest{Reason: *reason}).Validate(); err != nil {
		return fmt.Errorf("%w: --reason: %v", errUsage, err)
	}
	cfg, err := o.load(getenv)
	if err != nil {
		return err
	}
	fc, err := app.FanoutConfig(cfg)
	if err != nil {
		return err
	}
	// Refuse an unknown vendor or an unlinked tenant before the network.
	var names []string
	var linked []string
	for _, v := range fc.Vendors {
		names = append(names, v.Name)
		if v.Name == *vendor {
			linked = v.Tenants
		}
	}
	if !slices.Contains(names, *vendor) {
		return notInConfig(cfg, "--vendor "+*vendor, fanout.ErrUnknownVendor, "known", names)
	}
	if !slices.Contains(linked, *tenant) {
		return notInConfig(cfg, "--tenant "+*tenant, fmt.Errorf("%v %s", fanout.ErrNotLinked, *vendor), "its tenants", linked)
	}
	nc, js, err := o.connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	stores := map[string]jetstream.ObjectStore{}
	for _, name := range []string{bus.ObjectFanout, bus.ObjectSnapshots, bus.ObjectExports} {
		s, err := js.ObjectStore(ctx, name)
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("object store %q not found: start the pipeline with the fan-out once, so that it creates it", name)
		}
		if err != nil {
			return fmt.Errorf("object store %q: %w", name, err)
		}
		stores[name] = s
	}
	f, err := fanout.New(fc, fanout.Deps{Conn: nc, JS: js, Store: stores[bus.ObjectFanout],
		Snapshots: stores[bus.ObjectSnapshots], Exports: stores[bus.ObjectExports], Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	id, err := f.Request(ctx, *vendor, *tenant, *reason)
	if errors.Is(err, fanout.ErrNoState) {
		return fmt.Errorf("tenant %s has no exported state yet: nothing to resync (its first export reaches the vendor as it is)", *tenant)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resync requested: %s (vendor %s, tenant %s); a running fan-out does it between two exports\n", id, *vendor, *tenant)
	return nil
}
