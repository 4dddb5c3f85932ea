// Package daemon is what the skolebuss daemons (requester, fetcher, publisher)
// share at start and stop: the common flags, loading the configuration in
// its order (file or demo default, SKOLEBUSS_* variables, flags, validation,
// secrets), connecting to NATS or starting the embedded server, serving
// /metrics, and the orderly close of telemetry and the connection.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// ErrUsage marks an error in the command line or the configuration: the
// daemon exits with status 2.
var ErrUsage = errors.New("usage")

// Flags are the flags every skolebuss daemon shares: where the config is,
// which NATS to use, how much to log, where to serve metrics.
type Flags struct {
	// NATSOnly is set by a daemon that never calls the upstream (requester,
	// publisher): Load then resolves only the NATS secrets, so the process
	// needs no application secret in its environment.
	NATSOnly bool

	configFile, natsURL, natsCreds, natsUser, logLevel, metricsAddr string
	embedded, allowProduction                                       bool
}

// Register adds the shared flags of the daemons to fs: those of
// RegisterClient, and --embedded, --log-level, --allow-production and
// --metrics-addr.
func (d *Flags) Register(fs *flag.FlagSet) {
	d.RegisterClient(fs)
	fs.BoolVar(&d.embedded, "embedded", false, "run the embedded NATS server in this process (nats.embedded) instead of connecting to one")
	fs.StringVar(&d.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&d.allowProduction, "allow-production", false, "allow production endpoints (the config must say environment: production too)")
	fs.StringVar(&d.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics (overrides telemetry.metrics_addr)")
}

// RegisterClient adds to fs the flags of a command that only connects to
// the pipeline's NATS server (the operator commands): --config, --nats-url,
// --nats-creds and --nats-user.
func (d *Flags) RegisterClient(fs *flag.FlagSet) {
	fs.StringVar(&d.configFile, "config", "", "the skolebuss YAML `FILE` (default: the sandbox demo's configuration)")
	fs.StringVar(&d.natsURL, "nats-url", "", "NATS server or cluster `URL`s, comma-separated (overrides nats.url and $SKOLEBUSS_NATS_URL)")
	fs.StringVar(&d.natsCreds, "nats-creds", "", "NATS credentials `FILE` (overrides nats.credentials_file)")
	fs.StringVar(&d.natsUser, "nats-user", "", "NATS `USER` to connect as (overrides nats.user and $SKOLEBUSS_NATS_USER); its password comes from the variable nats.password_env or $SKOLEBUSS_NATS_PASSWORD_ENV names")
}

// Load reads the configuration (file or demo default), applies SKOLEBUSS_*
// variables and the flags, validates it and resolves the secrets. Its
// errors for a bad command line or file wrap ErrUsage.
func (d *Flags) Load(getenv func(string) string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	var level slog.Level
	if d.logLevel == "" {
		d.logLevel = "info"
	}
	if err := level.UnmarshalText([]byte(d.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", ErrUsage, d.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := LoadFile(d.configFile)
	if err != nil {
		return nil, nil, err
	}
	if err := cfg.Apply(getenv); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if d.natsURL != "" {
		cfg.NATS.URL = d.natsURL
	}
	if d.natsCreds != "" {
		cfg.NATS.CredentialsFile = d.natsCreds
	}
	if d.natsUser != "" {
		cfg.NATS.User = d.natsUser
	}
	if d.allowProduction {
		cfg.AllowProduction = true
	}
	if d.metricsAddr != "" {
		cfg.Telemetry.MetricsAddr = d.metricsAddr
	}
	if d.embedded && cfg.NATS.URL != "" {
		return nil, nil, fmt.Errorf("%w: --embedded runs a server here; it excludes the NATS URL %s", ErrUsage, cfg.NATS.URL)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	resolve := cfg.ResolveSecrets
	if d.NATSOnly {
		resolve = cfg.ResolveNATSSecrets
	}
	if err := resolve(getenv, os.ReadFile); err != nil {
		return nil, nil, err
	}
	return cfg, logger, nil
}

// LoadFile is the configuration of file, or the demo's (config.Demo) for
// "", before variables and flags apply; a file that does not load is a
// usage error.
func LoadFile(file string) (*config.Config, error) {
	if file == "" {
		return config.Demo(), nil
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return cfg, nil
}

// Open connects to NATS (or starts the embedded server with --embedded) and
// provisions the streams and stores; connected as a stage's NATS user
// (app.ClientBusConfig) it only checks that they exist, and fails naming
// `skolebuss provision` when one does not.
func (d *Flags) Open(ctx context.Context, cfg *config.Config, name string, logger *slog.Logger) (*bus.Bus, error) {
	bc := app.ClientBusConfig(cfg, name)
	if d.embedded {
		bc = app.BusConfig(cfg, name)
	}
	b, err := bus.Open(ctx, bc, logger)
	if err != nil {
		return nil, connectError(bc, err)
	}
	return b, nil
}

// Dial connects to the pipeline's NATS server as name, without
// provisioning anything: an operator command changes no stream.
func Dial(ctx context.Context, cfg *config.Config, name string) (*nats.Conn, jetstream.JetStream, error) {
	bc := app.ClientBusConfig(cfg, name)
	nc, err := bus.Connect(ctx, bc.URL, bc, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (is the pipeline running? --nats-url names another server)", connectError(bc, err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// connectError says where a connection failed (the URL without user info,
// the user) and never the password.
func connectError(bc bus.Config, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	where := "the embedded server"
	if bc.URL != "" {
		where = bus.RedactURL(bc.URL)
	}
	if bc.User != "" {
		where += " as user " + strconv.Quote(bc.User)
	}
	return fmt.Errorf("nats at %s: %w", where, err)
}

// Start opens what a daemon's stage runs with (NATS, with the streams and
// stores provisioned, and telemetry serving /metrics where the
// configuration says) and returns it as an app.Runtime. stop flushes
// telemetry, then drains the connection (and stops an embedded server):
// call it after the stage has stopped.
func (d *Flags) Start(ctx context.Context, cfg *config.Config, name string, logger *slog.Logger) (rt app.Runtime, stop func(), err error) {
	b, err := d.Open(ctx, cfg, name, logger)
	if err != nil {
		return app.Runtime{}, nil, err
	}
	tel, err := Telemetry(ctx, cfg, logger)
	if err != nil {
		CloseBus(b, logger)
		return app.Runtime{}, nil, err
	}
	stop = func() {
		Flush(tel, logger)
		CloseBus(b, logger)
	}
	return app.Runtime{Config: cfg, Bus: b, Logger: logger, Tracer: tel.TracerProvider(), Meter: tel.MeterProvider()}, stop, nil
}

// Flush shuts telemetry down, flushing what it buffers, within 10 seconds.
func Flush(tel *telemetry.Telemetry, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		logger.Warn("telemetry not flushed", "error", err)
	}
}

// CloseBus drains the NATS connection and stops an embedded server, within
// 10 seconds.
func CloseBus(b *bus.Bus, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		logger.Warn("nats not closed cleanly", "error", err)
	}
}

// Telemetry sets up telemetry from cfg and serves /metrics when the config
// (or --metrics-addr) names an address, until ctx ends.
func Telemetry(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*telemetry.Telemetry, error) {
	tel, err := telemetry.New(ctx, app.TelemetryConfig(cfg), logger)
	if err != nil {
		return nil, err
	}
	if _, err := tel.ServeMetrics(ctx, cfg.Telemetry.MetricsAddr, logger); err != nil {
		Flush(tel, logger)
		return nil, err
	}
	return tel, nil
}
