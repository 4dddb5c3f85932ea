package publisher

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// Metric names. Attributes: entity (org, group, person, membership), op
// (created, updated, deleted), outcome (see the Outcome* constants), reason
// (the failure reason of a held, invalid or failed export), skolebuss.tenant
// (a tenant id: exports and last_applied only). Nothing personal.
const (
	MetricEvents      = "skolebuss.publish.events"       // counter: change events published, by entity and op
	MetricExports     = "skolebuss.publish.exports"      // counter: exports processed, by tenant, outcome and reason
	MetricDuration    = "skolebuss.publish.duration"     // histogram (s): one export's processing, by outcome
	MetricLastApplied = "skolebuss.publish.last_applied" // gauge (s) per tenant: Unix time of its last applied export
)

// Outcomes of one export, the outcome attribute of MetricExports and
// MetricDuration. A cancelled export (the publisher stopping) is not
// counted: it is handed back and redone.
const (
	// OutcomeApplied: change events published and the new state stored.
	OutcomeApplied = "applied"
	// OutcomeUnchanged: the state stored with no change event, or the
	// export found applied already (a redelivery).
	OutcomeUnchanged = "unchanged"
	// OutcomeHeld: the export would delete too much; it waits in the DLQ
	// for an operator (failure.ReasonDeletionHeld).
	OutcomeHeld = "held"
	// OutcomeInvalid: any other permanent error (a document that does not
	// parse, a wrong digest, a missing export object); dead-lettered.
	OutcomeInvalid = "invalid"
	// OutcomeFailed: a transient error (the bus away, an unacknowledged
	// publish); the export is redone.
	OutcomeFailed = "failed"
)

// metrics are the publisher's instruments. Safe for concurrent use.
type metrics struct {
	events      metric.Int64Counter
	exports     metric.Int64Counter
	duration    metric.Float64Histogram
	lastApplied metric.Int64Gauge
	opsOf       map[pifu.Entity][3]metric.AddOption // per entity, in the order created, updated, deleted
}

func newMetrics(m metric.Meter) (*metrics, error) {
	ms := &metrics{opsOf: make(map[pifu.Entity][3]metric.AddOption, len(pifu.Entities))}
	var err error
	if ms.events, err = m.Int64Counter(MetricEvents, metric.WithDescription("change events published, by entity and op")); err != nil {
		return nil, err
	}
	if ms.exports, err = m.Int64Counter(MetricExports, metric.WithDescription("exports processed, by tenant and outcome")); err != nil {
		return nil, err
	}
	if ms.duration, err = m.Float64Histogram(MetricDuration, metric.WithUnit("s"), metric.WithDescription("time to process one export")); err != nil {
		return nil, err
	}
	if ms.lastApplied, err = m.Int64Gauge(MetricLastApplied, metric.WithUnit("s"),
		metric.WithDescription("Unix time of the tenant's last applied export (changed, unchanged or applied already)")); err != nil {
		return nil, err
	}
	for _, e := range pifu.Entities {
		var opts [3]metric.AddOption
		for i, op := range []messages.Op{messages.OpCreated, messages.OpUpdated, messages.OpDeleted} {
			opts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("entity", string(e)), attribute.String("op", string(op))))
		}
		ms.opsOf[e] = opts
	}
	return ms, nil
}

// outcomeOf classifies one export's result; ok is false for a cancelled one.
func outcomeOf(out Outcome, err error) (outcome string, ok bool) {
	switch {
	case err == nil && out.Events > 0:
		return OutcomeApplied, true
	case err == nil:
		return OutcomeUnchanged, true
	case failure.HasReason(err, failure.ReasonDeletionHeld):
		return OutcomeHeld, true
	}
	switch failure.ClassOf(err) {
	case failure.Canceled:
		return "", false
	case failure.Permanent:
		return OutcomeInvalid, true
	}
	return OutcomeFailed, true
}

// exportNote carries the Outcome of the export a message brought from
// Handle to countExports.
type exportNote struct{ out Outcome }

type noteKey struct{}

// noteOutcome leaves out for countExports, if it runs around the handler.
func noteOutcome(ctx context.Context, out Outcome) {
	if n, ok := ctx.Value(noteKey{}).(*exportNote); ok {
		n.out = out
	}
}

// countExports is the stage's metrics middleware (added by Run to
// worker.Config.Middleware): per export, MetricDuration by outcome and
// MetricExports by tenant, outcome and reason. A message refused before
// Process (a body that does not decode, a tenant that is not the
// subject's) counts as invalid, of the subject's tenant.
func (p *Publisher) countExports(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		start := time.Now()
		note := &exportNote{}
		m.SetContext(context.WithValue(m.Context(), noteKey{}, note))
		res, err := h(m)
		tenant := note.out.Tenant
		if tenant == "" {
			tenant = worker.Tenant(m.Context())
		}
		p.metrics.export(m.Context(), tenant, start, note.out, err)
		return res, err
	}
}

// export records one processed export that started at start: its outcome
// and its duration.
func (ms *metrics) export(ctx context.Context, tenant string, start time.Time, out Outcome, err error) {
	outcome, ok := outcomeOf(out, err)
	if !ok {
		return
	}
	reason := ""
	if err != nil {
		reason = failure.Label(failure.ReasonOf(err))
	}
	ms.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("outcome", outcome)))
	ms.exports.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.KeyTenant, tenant),
		attribute.String("outcome", outcome), attribute.String("reason", reason)))
}

// applied records an export whose state is the tenant's now: the time of
// that, and the events it published (counted once all of them are
// acknowledged, from the export's counts; a redo after a crash counts them
// again).
func (ms *metrics) applied(ctx context.Context, tenant string, out Outcome) {
	ms.lastApplied.Record(ctx, time.Now().Unix(), metric.WithAttributes(attribute.String(telemetry.KeyTenant, tenant)))
	for e, c := range out.Counts {
		opts, known := ms.opsOf[e]
		if !known {
			continue
		}
		for i, n := range [3]int{c.Created, c.Updated, c.Deleted} {
			if n > 0 {
				ms.events.Add(ctx, int64(n), opts[i])
			}
		}
	}
}
