// Package requester puts export jobs on the JOBS work queue: on each tenant's
// schedule, on an operator's demand, and as replays of dead letters.
//
// Every job carries a deterministic Nats-Msg-Id (messages.ExportJob.DedupKey):
// a scheduled job is keyed by tenant and slot, so any number of requester
// replicas scheduling the same slot store one job within the JOBS stream's
// duplicate window; an on-demand job is keyed by its id, by default the
// tenant and the current minute, so an operator who asks twice in a minute
// gets one job. A trace starts here: each job carries the traceparent of the
// requester's span, and the fetcher and publisher continue that trace.
package requester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// ErrUnknownTenant is returned for a tenant the configuration does not list.
var ErrUnknownTenant = errors.New("unknown tenant")

// Tenant is one tenant the requester may request exports for.
type Tenant struct {
	ID          string
	Application string
	// Interval between scheduled exports; 0 means on demand only.
	Interval time.Duration
	// Jitter shifts each slot's request by a pseudo-random part of it (the
	// same for every replica), so tenants with one interval do not all start
	// at once. Less than Interval.
	Jitter time.Duration
}

// Config is what the requester requests jobs for.
type Config struct {
	Tenants []Tenant
	// Source is the name this requester logs under. Default "requester".
	Source string
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, t := range c.Tenants {
		if err := messages.ValidateTenant(t.ID); err != nil {
			return fmt.Errorf("requester: tenants[%d]: %w", i, err)
		}
		if seen[t.ID] {
			return fmt.Errorf("requester: tenants[%d]: tenant %s is listed twice", i, t.ID)
		}
		seen[t.ID] = true
		if err := messages.ValidateApplication(t.Application); err != nil {
			return fmt.Errorf("requester: tenants[%d] (%s): %w", i, t.ID, err)
		}
		switch {
		case t.Interval < 0:
			return fmt.Errorf("requester: tenants[%d] (%s): negative interval %s", i, t.ID, t.Interval)
		case t.Interval > 0 && t.Interval < time.Second:
			return fmt.Errorf("requester: tenants[%d] (%s): interval %s is shorter than 1s", i, t.ID, t.Interval)
		case t.Jitter < 0 || (t.Interval > 0 && t.Jitter >= t.Interval):
			return fmt.Errorf("requester: tenants[%d] (%s): jitter %s must be at least 0 and less than the interval %s", i, t.ID, t.Jitter, t.Interval)
		}
	}
	return nil
}

// Requester publishes export jobs. It is safe for concurrent use.
type Requester struct {
	js      jetstream.JetStream
	cfg     Config
	tenants map[string]Tenant
	logger  *slog.Logger
	tracer  trace.Tracer
}

// New returns a Requester publishing through js. logger and tp may be nil.
func New(js jetstream.JetStream, cfg Config, logger *slog.Logger, tp trace.TracerProvider) (*Requester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Source == "" {
		cfg.Source = "requester"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	r := &Requester{
		js: js, cfg: cfg, tenants: make(map[string]Tenant, len(cfg.Tenants)),
		logger: logger.With("component", cfg.Source),
		tracer: tp.Tracer("github.com/skolebuss/skolebuss/internal/requester"),
	}
	for _, t := range cfg.Tenants {
		r.tenants[t.ID] = t
	}
	return r, nil
}

// Result is what one request published.
type Result struct {
	Job messages.ExportJob
	// Seq is the job's sequence in the JOBS stream.
	Seq uint64
	// Duplicate is true when the stream already held a job with the same
	// key (another replica, or an earlier request in the same slot or
	// minute): nothing new was stored.
	Duplicate bool
	// TraceID is the trace the job starts (every stage adds its spans to it).
	TraceID string
}

// Tenant returns the configured tenant id, or an error naming what is wrong
// with id: ErrInvalidToken (from messages) for an id that could not stand in
// a subject, ErrUnknownTenant for one the configuration does not list.
func (r *Requester) Tenant(id string) (Tenant, error) {
	if err := messages.ValidateTenant(id); err != nil {
		return Tenant{}, err
	}
	t, ok := r.tenants[id]
	if !ok {
		return Tenant{}, fmt.Errorf("%w %s: it is not in the configuration's tenants", ErrUnknownTenant, id)
	}
	return t, nil
}

// RequestNow requests an export of tenant at once (reason demand). The job id
// is id when given (letters, digits, '-' and '_'), else
// demand-<tenant>-<UTC minute>, so requests within one minute collapse into
// one job. ctx bounds the publish.
func (r *Requester) RequestNow(ctx context.Context, tenant, id string) (Result, error) {
	t, err := r.Tenant(tenant)
	if err != nil {
		return Result{}, err
	}
	now := r.cfg.Now().UTC()
	if id == "" {
		id = "demand-" + t.ID + "-" + now.Truncate(time.Minute).Format("20060102T1504")
	} else if err := messages.ValidateToken("job id", id); err != nil {
		return Result{}, err
	}
	job := messages.ExportJob{
		JobID: id, Tenant: t.ID, Application: t.Application,
		Reason: messages.ReasonDemand, RequestedAt: now,
	}
	return r.publish(ctx, job, nil)
}

// scheduled publishes the job of one tenant's slot.
func (r *Requester) scheduled(ctx context.Context, t Tenant, slot time.Time) (Result, error) {
	job := messages.ExportJob{
		JobID:       "schedule-" + t.ID + "-" + slot.UTC().Format("20060102T150405"),
		Tenant:      t.ID,
		Application: t.Application,
		Reason:      messages.ReasonSchedule,
		Slot:        slot.UTC(),
		RequestedAt: r.cfg.Now().UTC(),
	}
	return r.publish(ctx, job, nil)
}

// publish encodes job, starts the job's trace, and stores it in JOBS.
// extra headers (messages.HeaderForce) are added to the message.
func (r *Requester) publish(ctx context.Context, job messages.ExportJob, extra nats.Header) (Result, error) {
	ctx, span := telemetry.Start(ctx, r.tracer, "request export", trace.SpanKindProducer,
		telemetry.Stage("request"), telemetry.Tenant(job.Tenant), telemetry.Application(job.Application), telemetry.Job(job.JobID))
	defer span.End()
	msg, err := messages.Encode(job)
	if err != nil {
		telemetry.RecordError(span, err)
		return Result{}, fmt.Errorf("request export %s: %w", job.Tenant, err)
	}
	for k, v := range extra {
		msg.Header[k] = v
	}
	telemetry.InjectNATS(ctx, msg)
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		telemetry.RecordError(span, err)
		return Result{}, fmt.Errorf("request export %s: publish job %s: %w", job.Tenant, job.JobID, err)
	}
	res := Result{Job: job, Seq: ack.Sequence, Duplicate: ack.Duplicate, TraceID: telemetry.TraceID(ctx)}
	r.logger.Info("export job requested", "tenant", job.Tenant, "job_id", job.JobID,
		"reason", string(job.Reason), "seq", ack.Sequence, "duplicate", ack.Duplicate,
		"trace_id", telemetry.TraceID(ctx))
	return res, nil
}
