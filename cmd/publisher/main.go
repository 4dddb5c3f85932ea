// Command publisher is the skolebuss stage that turns fetched PIFU exports
// into change events: it consumes exports.fetched.<tenant>, diffs each export
// against the tenant's last snapshot and publishes the changes on
// lms.<tenant>.<entity>.<op>. Run with --help for the flags.
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
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

const usageText = `Usage: publisher [flags]

Consumes fetched exports (exports.fetched.<tenant>), diffs each against the
tenant's last snapshot and publishes the changes on lms.<tenant>.<entity>.<op>
between lms.<tenant>.export.started and .completed. An export that would delete
more than publisher.delete_threshold of a tenant's records goes to the
dead-letter stream (reason deletion_held) until an operator replays it with
--force. Runs until SIGINT or SIGTERM, then finishes the export in hand.

Without --config (and without --nats-url) it uses the demo configuration and
an embedded NATS server in data/nats.

Flags:
%s
Environment: %s
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "publisher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "skolebuss config `file` (YAML); empty: the demo configuration")
	natsURL := fs.String("nats-url", "", "NATS `url` of an external server or cluster (overrides nats.url)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "the `duration` after which an export held by a publisher that died goes to another (in-progress acks go out every third of it)")
	fs.Usage = func() {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, usageText, b.String(), strings.Join(config.EnvVars(), ", "))
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := loadConfig(*cfgPath, *natsURL)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Publisher.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	tel, err := telemetry.New(ctx, cfg.TelemetryConfig(), logger)
	if err != nil {
		return err
	}
	b, err := bus.Open(ctx, cfg.Bus(), logger)
	if err != nil {
		_ = tel.Shutdown(context.Background())
		return err
	}
	pub, err := publisher.New(b.Conn, b.Stores.Exports, b.Stores.Snapshots, publisher.Config{
		Diff:   diff.Config{SpoolDir: cfg.Publisher.SpoolDir, DeleteThreshold: cfg.Publisher.DeleteThreshold},
		Logger: logger, TracerProvider: tel.TracerProvider(),
	})
	if err == nil {
		wcfg := publisher.WorkerConfig()
		wcfg.Meter = tel.MeterProvider()
		wcfg.AckWait = *ackWait
		logger.Info("publisher running", "config", cfg.File())
		err = pub.Run(ctx, b.JS, wcfg, logger, tel.TracerProvider())
	}
	// Shutdown in order: the stage has stopped consuming and drained; flush
	// telemetry, then close NATS.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if terr := tel.Shutdown(sctx); terr != nil {
		logger.Warn("telemetry flush", "err", terr)
	}
	if berr := b.Close(sctx); berr != nil {
		logger.Warn("closing nats", "err", berr)
	}
	logger.Info("publisher stopped")
	return err
}

// loadConfig reads the config (or the demo's), applies SKOLEBUSS_* and the
// flags, validates it and resolves the NATS secrets. The publisher never
// calls the upstream, so application secrets are not needed here.
func loadConfig(path, natsURL string) (*config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if err := cfg.Apply(os.Getenv); err != nil {
		return nil, err
	}
	if natsURL != "" {
		cfg.NATS.URL = natsURL
	}
	natsOnly := *cfg
	natsOnly.Applications = nil
	if err := natsOnly.ResolveSecrets(os.Getenv, os.ReadFile); err != nil {
		return nil, err
	}
	cfg.NATS = natsOnly.NATS
	for i := range cfg.Applications {
		if cfg.Applications[i].ClientSecret.IsZero() && cfg.Applications[i].ClientSecretEnv == "" && cfg.Applications[i].ClientSecretFile == "" {
			cfg.Applications[i].ClientSecret = config.DemoSecret // the demo's; never used here
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}
