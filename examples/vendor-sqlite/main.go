// Command vendor-sqlite is an LMS vendor built on skolebuss's vendor kit: it
// keeps every tenant linked to it in one SQLite file, applying its events in
// batched transactions, checking each export.completed and asking for a
// resync when its copy differs. Killed at any point, it goes on from its last
// committed transaction when started again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/vendorkit"
)

const help = `vendor-sqlite keeps an LMS vendor's copy of its tenants in SQLite.

It reads the vendor's stream (VENDOR_<vendor>) from skolebuss's NATS, applies
every event to the SQLite file --db (tables orgs, groups, persons,
memberships: tenant, key, object, hash, mix; position; exports), checks every
export.completed against the file and asks for a resync of a tenant whose copy
differs. Stopped by SIGINT or SIGTERM it finishes the batch in hand; killed, it
goes on from its last transaction when started again.

Usage:
  vendor-sqlite --vendor NAME [--nats URL] [--user USER] [--password-file FILE] [--db FILE]

The password comes from --password-file (skolebuss demo writes each vendor's
to a file it names as it starts), --password, or the environment:
VENDOR_SQLITE_PASSWORD. Without one it connects without a user.

Flags:
`

// PasswordEnv is the variable --password defaults to.
const PasswordEnv = "VENDOR_SQLITE_PASSWORD"

type options struct {
	nats, vendor, user, password, passwordFile, db, consumer string
	batch                                                    int
	verbose                                                  bool
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("vendor-sqlite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help); fs.PrintDefaults() }
	fs.StringVar(&o.nats, "nats", "nats://127.0.0.1:4222", "the NATS server(s), comma-separated")
	fs.StringVar(&o.vendor, "vendor", "", "the vendor's name (required)")
	fs.StringVar(&o.user, "user", "", "the NATS user (default vendor-<vendor> when a password is given)")
	fs.StringVar(&o.password, "password", "", "the NATS password (default $"+PasswordEnv+")")
	fs.StringVar(&o.passwordFile, "password-file", "", "read the NATS password from `FILE` (its first line)")
	fs.StringVar(&o.db, "db", "vendor.db", "the SQLite file")
	fs.StringVar(&o.consumer, "consumer", "vendor-sqlite", "the name of the durable consumer")
	fs.IntVar(&o.batch, "batch", 1000, "the most events one transaction applies")
	fs.BoolVar(&o.verbose, "v", false, "log every export checked")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.vendor == "":
		return o, errors.New("--vendor is required")
	case o.db == "":
		return o, errors.New("--db must name a file")
	}
	switch {
	case o.password != "" && o.passwordFile != "":
		return o, errors.New("give --password or --password-file, not both")
	case o.passwordFile != "":
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return o, fmt.Errorf("--password-file: %w", err)
		}
		o.password, _, _ = strings.Cut(string(b), "\n")
		if o.password = strings.TrimSpace(o.password); o.password == "" {
			return o, fmt.Errorf("--password-file %s is empty", o.passwordFile)
		}
	case o.password == "":
		o.password = getenv(PasswordEnv)
	}
	if o.user == "" && o.password != "" {
		o.user = "vendor-" + o.vendor
	}
	return o, nil
}

func main() {
	o, err := parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vendor-sqlite:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "vendor-sqlite:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	store, err := OpenStore(ctx, o.db)
	if err != nil {
		return err
	}
	defer store.Close()
	var opts []nats.Option
	if o.user != "" {
		opts = append(opts, nats.UserInfo(o.user, o.password))
	}
	nc, err := vendorkit.Connect(o.nats, o.vendor, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	kit, err := vendorkit.New(nc, store, vendorkit.Config{
		Vendor: o.vendor, Consumer: o.consumer, BatchSize: o.batch, MaxAckPending: max(10000, o.batch), Logger: log,
		OnExport: func(c vendorkit.ExportCheck) {
			if c.Mismatch != "" {
				log.Warn("copy differs; resync asked", "tenant", c.Tenant, "export", c.ExportID, "differs", c.Mismatch)
				return
			}
			log.Info("export checked", "tenant", c.Tenant, "export", c.ExportID, "resync", c.Resync,
				"persons", c.Summary.Counts[vendorkit.EntityPerson], "checksum", c.Summary.Checksum.String())
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "vendor-sqlite: vendor %s, %s into %s\n", o.vendor, kit.Stream(), o.db)
	return kit.Run(ctx)
}
