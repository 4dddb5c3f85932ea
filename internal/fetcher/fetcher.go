// Package fetcher is the fetch stage: it takes export jobs from the JOBS work
// queue, gets each tenant's PIFU export from the upstream within the
// application's rate limit and quotas, streams it into the object store
// "exports", and announces it with a messages.FetchedExport on
// exports.fetched.<tenant>.
//
// What a job's outcome does (the runtime of internal/worker acts on it):
//   - stored and announced: nil, the job is acked.
//   - the application's rate limit or quota says wait: a short wait is slept,
//     a long one hands the job back with that delay (Throttled).
//   - the upstream answers 429 or 503 with Retry-After: every replica is
//     blocked for that long (quota.Limiter.Block) and the job is delayed.
//   - the tenant's circuit breaker (or the token endpoint's) is open: the job
//     is delayed by the breaker's remaining open time, never failed.
//   - 5xx, timeouts, resets, a body cut short: Transient, retried with backoff
//     and counted by the breakers; the partial object is deleted.
//   - a refused client, scope or tenant, 403, 404, a wrong content type, a
//     token whose tenant claim names another tenant (no export is requested
//     with it): Permanent, the job goes to the dead-letter stream.
//   - an export past its deadline or its maximum size (Bounds): Permanent,
//     the partial export deleted; the next scheduled job tries again.
//
// A job is idempotent: the export is stored under a name derived from the job
// id, and its FetchedExport carries the job id as Nats-Msg-Id. A fetcher that
// died after storing the export finds it on the redo and announces it without
// fetching again; one that died after announcing it announces it again and
// JetStream drops the duplicate. A fetcher that died mid-download leaves no
// object (the object store writes an object's metadata last); the job comes
// back after the consumer's AckWait and is fetched again.
package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// Stage is the stage name: DLQ subjects dlq.fetch.<tenant>, spans, metrics.
const Stage = "fetch"

// Consumer is the durable consumer's name on the JOBS stream.
const Consumer = "fetcher"

// Config configures the fetch stage.
type Config struct {
	// API is the export client's configuration (APIBase required).
	API flytapi.Config
	// Applications are the limits of every application jobs may name; a job
	// of an application not listed is a permanent error.
	Applications map[string]quota.Limits
	// MaxQuotaWait is the longest wait for the rate limit that a job sleeps
	// through; a longer one (a quota used up, a long Retry-After) hands the
	// job back with that delay. Default 5s.
	MaxQuotaWait time.Duration
	// Breaker is the circuit breaker of each tenant, TokenBreaker the one of
	// the token endpoint. Defaults: open after 5 consecutive failures, for 60s.
	Breaker, TokenBreaker BreakerConfig

	// AckWait of the JOBS consumer: a fetcher that dies holding a job gives it
	// up after this. In-progress acks keep a long download's job. Default 30s.
	AckWait time.Duration
	// MaxInFlight is the jobs in flight across all fetcher replicas
	// (the consumer's MaxAckPending). Default 16.
	MaxInFlight int
	// Concurrency is the jobs one fetcher handles at once. Default 4.
	Concurrency int
	// MaxAttempts and Backoff: real (transient) attempts before a job is
	// dead-lettered, and the delays between them. Defaults 5 and
	// 1s, 5s, 30s, 2m (see worker.Config).
	MaxAttempts int
	Backoff     []time.Duration
	// DrainTimeout is how long in-flight downloads may finish at shutdown
	// before they are cut and their jobs handed back. Default 30s.
	DrainTimeout time.Duration
	// Replicas of the stage's attempts bucket (worker.Config.Replicas): the
	// streams' replicas. Default 1.
	Replicas int
	// Bounds limit every export (a deadline and a maximum size); a tenant
	// in TenantBounds has its own, whose zero fields take these. Defaults
	// DefaultExportDeadline and DefaultMaxExportSize.
	Bounds       Bounds
	TenantBounds map[string]Bounds
	// OrphanAge is how long the chunks of a download no object names must
	// have been idle before Run's sweep purges them (see
	// SweepOrphanChunks). Default DefaultOrphanAge.
	OrphanAge time.Duration
}

func (c *Config) setDefaults() {
	c.API = c.API.WithDefaults()
	if c.MaxQuotaWait == 0 {
		c.MaxQuotaWait = 5 * time.Second
	}
	c.Breaker.setDefaults()
	c.TokenBreaker.setDefaults()
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 16
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.OrphanAge == 0 {
		c.OrphanAge = DefaultOrphanAge
	}
	c.Bounds = c.Bounds.over(Bounds{Deadline: DefaultExportDeadline, MaxSize: DefaultMaxExportSize})
}

// Validate reports the first thing wrong with c (after defaults).
func (c Config) Validate() error {
	if err := c.API.Validate(); err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	if len(c.Applications) == 0 {
		return errors.New("fetcher: no applications")
	}
	for name, l := range c.Applications {
		if err := messages.ValidateApplication(name); err != nil {
			return fmt.Errorf("fetcher: %w", err)
		}
		if err := l.Validate(); err != nil {
			return fmt.Errorf("fetcher: application %s: %w", name, err)
		}
	}
	if c.MaxQuotaWait < 0 || c.MaxInFlight < 0 || c.Concurrency < 0 || c.MaxAttempts < 0 || c.OrphanAge < 0 {
		return errors.New("fetcher: max quota wait, max in flight, concurrency, max attempts and orphan age must not be negative")
	}
	if err := c.Bounds.validate("bounds"); err != nil {
		return err
	}
	for tenant, b := range c.TenantBounds {
		if err := b.validate("bounds of tenant " + tenant); err != nil {
			return err
		}
	}
	if err := c.Breaker.Validate(); err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	return c.TokenBreaker.Validate()
}

// Deps are what the stage works with. The caller owns them and closes them
// after Run returns.
type Deps struct {
	JS     jetstream.JetStream
	Stores *bus.Stores
	// Tokens gives access tokens per application and tenant (*auth.Source).
	Tokens flytapi.TokenSource
	Logger *slog.Logger
	Tracer trace.TracerProvider // nil: no tracing
	Meter  metric.MeterProvider // nil: no metrics
}

// Fetcher is the fetch stage's handler. It is safe for concurrent use.
type Fetcher struct {
	cfg      Config
	js       jetstream.JetStream
	exports  jetstream.ObjectStore
	limiter  *quota.Limiter
	api      *flytapi.Client
	tokens   *tokenBreaker
	breakers *tenantBreakers
	logger   *slog.Logger // the stage's: with stage=fetch
	base     *slog.Logger // the caller's, for the worker, which adds the stage itself
	tp       trace.TracerProvider
	metrics  *metrics
	now      func() time.Time
}

// New builds the stage. It starts nothing.
func New(cfg Config, d Deps) (*Fetcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.JS == nil || d.Stores == nil || d.Tokens == nil {
		return nil, errors.New("fetcher: JS, Stores and Tokens are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Tracer == nil {
		d.Tracer = noop.NewTracerProvider()
	}
	if d.Meter == nil {
		d.Meter = metricnoop.NewMeterProvider()
	}
	f := &Fetcher{
		cfg: cfg, js: d.JS, exports: d.Stores.Exports,
		breakers: &tenantBreakers{cfg: cfg.Breaker, m: map[string]*breaker[*fetched]{}},
		logger:   d.Logger.With("stage", Stage),
		base:     d.Logger,
		tp:       d.Tracer,
		now:      time.Now,
	}
	f.tokens = &tokenBreaker{src: d.Tokens, b: newBreaker[auth.Token]("token endpoint", failure.ReasonTokenBreakerOpen, cfg.TokenBreaker)}
	f.api = flytapi.New(cfg.API, f.tokens, f.logger, d.Tracer)
	f.limiter = quota.New(d.Stores.RateLimit, d.Stores.Quota, f.alert, f.logger)
	var err error
	if f.metrics, err = newMetrics(d.Meter.Meter("github.com/skolebuss/skolebuss/internal/fetcher"), f); err != nil {
		return nil, fmt.Errorf("fetcher: metrics: %w", err)
	}
	return f, nil
}

// SpanName is the name of each job's span.
const SpanName = "fetch export"

// WorkerConfig is the consumer the stage runs on, with the stage's
// middleware: the job's tenant checked against its subject's, each job in a
// span named SpanName, and the job metrics (MetricJobs, MetricDuration).
func (f *Fetcher) WorkerConfig() worker.Config {
	return worker.Config{
		Stage: Stage, Stream: bus.StreamJobs, Consumer: Consumer, FilterSubject: messages.JobsSubjects,
		AckWait: f.cfg.AckWait, MaxAckPending: f.cfg.MaxInFlight, Concurrency: f.cfg.Concurrency,
		MaxAttempts: f.cfg.MaxAttempts, Backoff: f.cfg.Backoff, TenantOf: messages.ParseJobSubject,
		PayloadTenant: jobTenant, SpanName: SpanName, Middleware: []message.HandlerMiddleware{f.countJobs},
		DrainTimeout: f.cfg.DrainTimeout, Replicas: f.cfg.Replicas,
	}
}

// jobTenant is the tenant an export job names.
func jobTenant(m *message.Message) (string, error) {
	job, err := messages.DecodeWatermill[messages.ExportJob](m)
	return job.Tenant, err
}

// Run builds the stage and consumes jobs until ctx is cancelled; then it
// stops taking jobs, lets downloads in flight finish within DrainTimeout
// (cutting and handing back the rest), and returns nil. Any number of Runs,
// in one process or many, share the work. The error is for a setup that
// failed.
func Run(ctx context.Context, cfg Config, d Deps) error {
	f, err := New(cfg, d)
	if err != nil {
		return err
	}
	wc := f.WorkerConfig()
	wc.Meter = d.Meter
	// Chunks of downloads a killed fetcher abandoned are purged while the
	// stage runs.
	var sweeping sync.WaitGroup
	defer sweeping.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	sweeping.Go(func() { f.sweepLoop(sctx) })
	return worker.Run(ctx, d.JS, wc, f.Handle, f.base, f.tp)
}

// alert publishes a quota alert (a threshold crossed, a pause, a
// resumption) on alerts.quota.<application>; its Nats-Msg-Id makes it one
// alert however many replicas notice it.
func (f *Fetcher) alert(ctx context.Context, a quota.Alert) error {
	msg, err := messages.Encode(messages.QuotaAlert(a))
	if err != nil {
		return err
	}
	f.logger.Warn("quota "+a.Kind, "application", a.Application, "period", a.Period, "period_key", a.PeriodKey,
		"threshold", a.Threshold, "used", a.Used, "limit", a.Limit)
	_, err = f.js.PublishMsg(ctx, msg)
	return err
}
