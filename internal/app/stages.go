package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/fetcher"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// Runtime is what every stage is built with: the loaded and validated
// configuration (secrets resolved), an open bus, a logger and the telemetry
// providers. The caller owns all of them and closes them after the stages
// have stopped.
type Runtime struct {
	Config *config.Config
	Bus    *bus.Bus
	Logger *slog.Logger
	// Tracer and Meter: nil for none.
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
}

func (rt Runtime) logger(component string) *slog.Logger {
	if rt.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rt.Logger.With("component", component)
}

// StageOptions are what a command line may change of a stage's consumer;
// zero keeps the stage's default.
type StageOptions struct {
	// AckWait is how long a message stays with a process that stopped
	// answering before another takes it.
	AckWait time.Duration
	// Drain is how long work in hand may finish at shutdown.
	Drain time.Duration
	// Concurrency is the messages one process handles at once (fetcher).
	Concurrency int
	// MaxInFlight is the messages in flight across all replicas (fetcher).
	MaxInFlight int
	// Window is the change events awaiting their acknowledgement at once
	// (publisher, fan-out).
	Window int
}

// NewRequester builds the requester stage from the configuration's tenants.
func NewRequester(rt Runtime) (*requester.Requester, error) {
	rc := RequesterConfig(rt.Config)
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	return requester.New(rt.Bus.JS, rc, rt.logger("requester"), rt.Tracer)
}

// Fetcher is the fetch stage with its token source.
type Fetcher struct {
	// Config is the stage's configuration as built from the file and the
	// options; Run uses it as it is then.
	Config fetcher.Config
	rt     Runtime
	tokens *auth.Source
}

// NewFetcher builds the fetch stage: the configuration's upstream and
// applications, a token source for them, and opts.
func NewFetcher(rt Runtime, opts StageOptions) (*Fetcher, error) {
	fc := FetcherConfig(rt.Config)
	fc.AckWait, fc.DrainTimeout = opts.AckWait, opts.Drain
	fc.Concurrency, fc.MaxInFlight = opts.Concurrency, opts.MaxInFlight
	tokens, err := auth.New(AuthConfig(rt.Config), rt.logger("auth"), rt.Tracer)
	if err != nil {
		return nil, err
	}
	return &Fetcher{Config: fc, rt: rt, tokens: tokens}, nil
}

// Run runs the stage until ctx ends (see fetcher.Run), then closes the
// token source.
func (f *Fetcher) Run(ctx context.Context) error {
	defer f.Close()
	return fetcher.Run(ctx, f.Config, f.deps())
}

// Handler is the stage's handler alone, for a caller that hands it jobs
// itself (the bench fetches one export this way). Close the Fetcher after.
func (f *Fetcher) Handler() (*fetcher.Fetcher, error) {
	return fetcher.New(f.Config, f.deps())
}

// Close stops the token source's renewals.
func (f *Fetcher) Close() { f.tokens.Close() }

func (f *Fetcher) deps() fetcher.Deps {
	rt := f.rt
	return fetcher.Deps{JS: rt.Bus.JS, Stores: rt.Bus.Stores, Tokens: f.tokens,
		Logger: rt.logger("fetcher"), Tracer: rt.Tracer, Meter: rt.Meter}
}

// Publisher is the publish stage and its consumer's configuration.
type Publisher struct {
	*publisher.Publisher
	// Worker is the consumer the stage runs (publisher.WorkerConfig with
	// the configuration's retry policy and the options).
	Worker worker.Config
	rt     Runtime
}

// NewPublisher builds the publish stage: the configuration's diff settings
// (its spool directory is created), retry policy and replicas, and opts.
func NewPublisher(rt Runtime, opts StageOptions) (*Publisher, error) {
	c := rt.Config
	if err := os.MkdirAll(c.Publisher.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	pc := PublisherConfig(c)
	pc.Window, pc.Logger, pc.TracerProvider, pc.Meter = opts.Window, rt.logger("publisher"), rt.Tracer, rt.Meter
	pub, err := publisher.New(rt.Bus.Conn, rt.Bus.Stores.Exports, rt.Bus.Stores.Snapshots, pc)
	if err != nil {
		return nil, err
	}
	w := publisher.WorkerConfig()
	if opts.AckWait > 0 {
		w.AckWait = opts.AckWait
	}
	if opts.Drain > 0 {
		w.DrainTimeout = opts.Drain
	}
	w.Meter, w.Replicas = rt.Meter, c.NATS.Replicas
	w.MaxAttempts, w.Backoff = c.Retry.MaxAttempts, c.Retry.Backoff
	return &Publisher{Publisher: pub, Worker: w, rt: rt}, nil
}

// Run runs the stage until ctx ends (see publisher.Publisher.Run).
func (p *Publisher) Run(ctx context.Context) error {
	return p.Publisher.Run(ctx, p.rt.Bus.JS, p.Worker, p.rt.logger("publisher"), p.rt.Tracer)
}

// NewFanout builds the fan-out stage from the configuration's vendors and
// opts (AckWait and Window): it provisions each vendor's stream and the
// fan-out's object store on the bus (idempotently; where the bus only
// checks what exists, bus.Config.Verify, it checks them), and returns the stage;
// Run it until ctx ends.
func NewFanout(ctx context.Context, rt Runtime, opts StageOptions) (*fanout.Fanout, error) {
	fc, err := FanoutConfig(rt.Config)
	if err != nil {
		return nil, err
	}
	fc.AckWait, fc.Window = opts.AckWait, opts.Window
	var store jetstream.ObjectStore
	if rt.Bus.Provisioned {
		store, err = bus.ProvisionVendors(ctx, rt.Bus.JS, BusConfig(rt.Config, "").Provision, VendorNames(rt.Config))
	} else {
		store, err = bus.VerifyVendors(ctx, rt.Bus.JS, VendorNames(rt.Config))
	}
	if err != nil {
		return nil, err
	}
	return fanout.New(fc, fanout.Deps{Conn: rt.Bus.Conn, JS: rt.Bus.JS, Store: store,
		Snapshots: rt.Bus.Stores.Snapshots, Exports: rt.Bus.Stores.Exports, Logger: rt.logger("fanout"), Meter: rt.Meter})
}
