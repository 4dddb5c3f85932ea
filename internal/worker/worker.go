// Package worker is the runtime of the pipeline's stages: it feeds the
// messages of a JetStream durable pull consumer to a stage's business logic
// through a watermill Router, and turns the handler's classified errors
// (internal/failure) into acks, delayed naks and dead letters.
//
// It uses the jetstream package of nats.go directly rather than
// watermill-nats' subscriber, which sends no in-progress acks, cannot nak with
// a delay chosen per error, and keeps redelivering a message it cannot
// unmarshal. Watermill still carries the handlers, their middleware and the
// router's orderly close.
//
// Contract of a delivery:
//   - nil from the handler: the message is acked (and removed from a
//     work-queue stream).
//   - failure.Permanent: a messages.DeadLetter (reason, class, attempts,
//     trace id, the failed message without secrets) is stored on
//     dlq.<stage>.<tenant>, then the message is acked.
//   - failure.Throttled: nak with the error's RetryAfter as the delay. Not an
//     attempt: a job waiting for a quota or an open breaker never dies of it.
//   - failure.Transient: one more real attempt, counted in the key-value
//     bucket "attempts" (so every replica sees it); nak with Backoff; after
//     MaxAttempts real attempts, dead-lettered as a permanent error would be.
//   - failure.Canceled: nak without delay, for another worker to take.
//
// While a handler runs, an in-progress ack is sent every AckWait/3, so long
// work keeps its message; a process that dies never acks and JetStream
// redelivers the message after AckWait.
//
// The work common to every stage is done by watermill middleware around the
// handler, so a handler does its stage's work only. Outermost first:
//
//  1. metrics: skolebuss.stage.duration of the message, and
//     skolebuss.stage.messages{stage, outcome} with the outcome that
//     classification settled on (ok, retried, throttled, dead_lettered,
//     handed_back).
//  2. classification: the only middleware that decides a message's fate
//     (the contract above): ack, nak with a delay, real attempts, dead
//     letters; it logs the decision. It sees the final error of everything
//     inside it, and its dead letters carry the trace id of the message's span.
//  3. tracing (telemetry.Middleware): continues the trace that came in the
//     message's headers with a consumer span named Config.SpanName (tenant,
//     stage, attempt), which the handler's context carries; the error's class
//     and reason are recorded on it.
//  4. the stage's own middleware (Config.Middleware, in order): its metrics by
//     labels of its own.
//  5. the tenant check (when Config.PayloadTenant is set): the subject's
//     tenant must be the body's, else a permanent "tenant_mismatch".
//  6. the recoverer, innermost: a panic becomes a transient "panic" error, its
//     stack logged and put on the span, so every middleware above sees an
//     ordinary failure.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
)

// Handler is a stage's business logic for one message; see the package
// documentation for what its result does. ctx is m.Context(): it carries the
// message's span (continuing the trace that came in its headers; the handler
// may add attributes to it), the attempt number (Attempt), the subject
// (Subject) and its tenant (Tenant). It is cancelled when
// the stage shuts down and DrainTimeout runs out.
type Handler func(ctx context.Context, m *message.Message) error

// Config describes one stage's consumer.
type Config struct {
	// Stage names the DLQ subject (dlq.<stage>.<tenant>), spans and metrics.
	Stage string
	// Stream and Consumer: the stream to read and the durable consumer's name.
	Stream, Consumer string
	// FilterSubject selects the stream's subjects this consumer takes.
	FilterSubject string
	// AckWait is how long JetStream waits for an ack before redelivering.
	// Default 30s; in-progress acks go out every AckWait/3.
	AckWait time.Duration
	// MaxAckPending bounds the messages in flight on the consumer across all
	// replicas. Default 1: one at a time, in stream order (the publisher
	// relies on it for the order of a tenant's exports).
	MaxAckPending int
	// Concurrency is the handlers one Run runs at once. Default 1.
	Concurrency int
	// MaxAttempts is the real (transient) attempts before dead-lettering.
	// Default 5.
	MaxAttempts int
	// Backoff is the nak delay after the n-th transient failure; the last
	// one repeats. Default 1s, 5s, 30s, 2m.
	Backoff []time.Duration
	// TenantOf extracts the tenant from a message's subject (for example
	// messages.ParseJobSubject). Required.
	TenantOf func(subject string) (string, error)
	// PayloadTenant, if set, is the tenant the message's body names (its
	// error, a body that does not decode, fails the message). The tenant
	// check refuses, as a permanent "tenant_mismatch", a message whose body
	// names another tenant than its subject, before the handler sees it.
	PayloadTenant func(m *message.Message) (string, error)
	// SpanName names the span of each message. Default Stage.
	SpanName string
	// Middleware is the stage's own, run inside the message's span and
	// outside the tenant check and the recoverer (see the package
	// documentation); the first is outermost. It decides no message's fate:
	// it returns the error of what it wraps.
	Middleware []message.HandlerMiddleware
	// DrainTimeout is how long in-flight handlers may finish when ctx ends;
	// after it their context is cancelled and their messages nak'ed. Default 30s.
	DrainTimeout time.Duration
	// Meter, if set, receives the stage's counters.
	Meter metric.MeterProvider
	// Replicas of the attempts bucket, which Run makes where it does not exist: the
	// streams' replicas (bus.ProvisionConfig.Replicas), 3 in a cluster.
	// Default 1.
	Replicas int
}

func (c *Config) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.SpanName == "" {
		c.SpanName = c.Stage
	}
}

// Validate reports the first thing wrong with c (after defaults).
func (c Config) Validate() error {
	switch {
	case c.Stage == "":
		return errors.New("worker: stage is required")
	case c.Stream == "" || c.Consumer == "":
		return errors.New("worker: stream and consumer are required")
	case c.FilterSubject == "":
		return errors.New("worker: filter subject is required")
	case c.TenantOf == nil:
		return errors.New("worker: TenantOf is required")
	case c.AckWait < 300*time.Millisecond:
		return fmt.Errorf("worker: ack wait %s is too short", c.AckWait)
	case c.MaxAckPending < 1 || c.Concurrency < 1 || c.MaxAttempts < 1:
		return errors.New("worker: max ack pending, concurrency and max attempts must be at least 1")
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("worker: replicas %d out of range 1..5", c.Replicas)
	}
	return nil
}

// Run consumes until ctx is cancelled, then stops consuming, lets in-flight
// handlers finish within DrainTimeout (their messages are nak'ed if they do
// not) and returns nil. It creates or updates the durable consumer and the
// attempts bucket itself. Any number of Runs (replicas, in one process or
// many) may share a consumer. The error is for a setup that failed.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler, logger *slog.Logger, tp trace.TracerProvider) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("stage", cfg.Stage)
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Consumer,
		FilterSubject: cfg.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.MaxAckPending,
		MaxDeliver:    -1, // attempts are counted by class, not by deliveries
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("worker %s: consumer %s on %s: %w", cfg.Stage, cfg.Consumer, cfg.Stream, err)
	}
	attempts, err := attemptsBucket(ctx, js, cfg.Replicas)
	if err != nil {
		return fmt.Errorf("worker %s: attempts bucket: %w", cfg.Stage, err)
	}
	r := newRuntime(cfg, js, cons, attempts, h, logger, tp)
	return r.run(ctx)
}

// AttemptsBucket is the key-value bucket counting real attempts.
const AttemptsBucket = bus.KVAttempts

// attemptsBucket looks the attempts bucket up, and makes it where it does
// not exist yet (a server this process provisions itself; a stage's user
// in a deployment may not, and finds it made by skolebuss provision).
func attemptsBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, AttemptsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return js.CreateOrUpdateKeyValue(ctx, bus.ProvisionConfig{Replicas: replicas}.AttemptsConfig())
	}
	return kv, err
}

type ctxKey int

const (
	keyAttempt ctxKey = iota
	keySubject
	keyDelivery
)

// Attempt is the real attempt number (1 = first) of the message being handled.
func Attempt(ctx context.Context) int {
	if n, ok := ctx.Value(keyAttempt).(int); ok {
		return n
	}
	return 1
}

// Subject is the NATS subject of the message being handled.
func Subject(ctx context.Context) string {
	s, _ := ctx.Value(keySubject).(string)
	return s
}

// Tenant is the tenant named by the subject of the message being handled
// (Config.TenantOf), or "" outside the runtime or for a subject that names
// none.
func Tenant(ctx context.Context) string {
	if d := deliveryOf(ctx); d != nil {
		return d.tenant
	}
	return ""
}

func watermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug, // the router's per-handler chatter
	})
}
