package fetcher

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// Metric names. Attributes: skolebuss.application, outcome (ok, reused,
// throttled, transient, permanent, canceled), reason (failure.Label: a
// reason of the set, or "other"),
// period (daily, monthly), skolebuss.tenant (breaker state only).
const (
	MetricJobs        = "skolebuss.fetch.jobs"          // counter: jobs handled, by outcome and reason
	MetricBytes       = "skolebuss.fetch.bytes"         // counter: export bytes stored
	MetricDuration    = "skolebuss.fetch.duration"      // histogram (s): one job, by outcome
	MetricThrottled   = "skolebuss.fetch.upstream_429"  // counter: 429/503 answers (every replica blocked)
	MetricDeprecated  = "skolebuss.upstream.deprecated" // counter: exports answered with Deprecation or Sunset
	MetricBreakerOpen = "skolebuss.fetch.breaker"       // gauge per tenant: 0 closed, 1 half-open, 2 open

	// The quota gauges, per application and period, are read from the
	// shared store at each collection (quota.Limiter.State), not remembered
	// by a replica: every fetcher replica reports the same figures, and they
	// fall to 0 used when the period resets, whether or not a request has
	// been made since.
	MetricQuotaUsed       = "skolebuss.quota.used"        // gauge: requests used in the period
	MetricQuotaLimit      = "skolebuss.quota.limit"       // gauge: the period's limit (0: none)
	MetricQuotaRemaining  = "skolebuss.quota.remaining"   // gauge: limit - used (only with a limit)
	MetricQuotaShare      = "skolebuss.quota.approach"    // gauge: used / limit, 0..1, the dashboard's quota approach
	MetricQuotaPaused     = "skolebuss.quota.paused"      // gauge: 1 while the quota is used up and jobs wait for the reset
	MetricQuotaExhaustsIn = "skolebuss.quota.exhausts_in" // gauge (s): until the quota runs out at the period's pace so far; only when before the reset
)

// stateTimeout bounds the store reads of one collection of the quota gauges.
const stateTimeout = 2 * time.Second

type metrics struct {
	jobs, bytesC, throttled, deprecatedC metric.Int64Counter
	duration                             metric.Float64Histogram
}

func newMetrics(m metric.Meter, f *Fetcher) (*metrics, error) {
	ms := &metrics{}
	var err error
	if ms.jobs, err = m.Int64Counter(MetricJobs, metric.WithDescription("export jobs handled, by outcome")); err != nil {
		return nil, err
	}
	if ms.bytesC, err = m.Int64Counter(MetricBytes, metric.WithUnit("By"), metric.WithDescription("export bytes stored")); err != nil {
		return nil, err
	}
	if ms.throttled, err = m.Int64Counter(MetricThrottled, metric.WithDescription("429 and 503 answers of the export API")); err != nil {
		return nil, err
	}
	if ms.deprecatedC, err = m.Int64Counter(MetricDeprecated, metric.WithDescription("exports answered with a Deprecation or Sunset header")); err != nil {
		return nil, err
	}
	if ms.duration, err = m.Float64Histogram(MetricDuration, metric.WithUnit("s"), metric.WithDescription("time to handle one export job")); err != nil {
		return nil, err
	}
	used, err := m.Int64ObservableGauge(MetricQuotaUsed, metric.WithDescription("upstream requests used in the quota period, from the shared store"))
	if err != nil {
		return nil, err
	}
	limit, err := m.Int64ObservableGauge(MetricQuotaLimit, metric.WithDescription("the quota period's limit (0: none)"))
	if err != nil {
		return nil, err
	}
	remaining, err := m.Int64ObservableGauge(MetricQuotaRemaining, metric.WithDescription("upstream requests left in the quota period"))
	if err != nil {
		return nil, err
	}
	share, err := m.Float64ObservableGauge(MetricQuotaShare, metric.WithDescription("share of the quota used, 0..1"))
	if err != nil {
		return nil, err
	}
	paused, err := m.Int64ObservableGauge(MetricQuotaPaused, metric.WithDescription("1 while the quota is used up and jobs wait for the period's reset"))
	if err != nil {
		return nil, err
	}
	exhausts, err := m.Float64ObservableGauge(MetricQuotaExhaustsIn, metric.WithUnit("s"),
		metric.WithDescription("time until the quota runs out at the period's pace so far, when that is before the reset"))
	if err != nil {
		return nil, err
	}
	brk, err := m.Int64ObservableGauge(MetricBreakerOpen, metric.WithDescription("circuit breaker per tenant: 0 closed, 1 half-open, 2 open"))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		now := f.now()
		for _, app := range slices.Sorted(maps.Keys(f.cfg.Applications)) {
			lim := f.cfg.Applications[app]
			sctx, cancel := context.WithTimeout(ctx, stateTimeout)
			st, err := f.limiter.State(sctx, app, lim, now)
			cancel()
			if err != nil {
				// No figure rather than a stale one.
				f.logger.Warn("quota state not readable for the metrics", "application", app, "error", err)
				continue
			}
			for _, p := range []quota.PeriodState{st.Daily, st.Monthly} {
				attrs := metric.WithAttributes(attribute.String(telemetry.KeyApplication, app), attribute.String("period", p.Period))
				o.ObserveInt64(used, p.Used, attrs)
				o.ObserveInt64(limit, p.Limit, attrs)
				if p.Limit <= 0 {
					continue
				}
				o.ObserveInt64(remaining, p.Remaining, attrs)
				o.ObserveFloat64(share, float64(p.Used)/float64(p.Limit), attrs)
				o.ObserveInt64(paused, boolInt(p.Paused), attrs)
				if p.ExhaustsBeforeReset {
					o.ObserveFloat64(exhausts, max(p.Exhausts.Sub(now).Seconds(), 0), attrs)
				}
			}
		}
		f.breakers.each(func(tenant string, b *breaker[*fetched]) {
			o.ObserveInt64(brk, b.state(), metric.WithAttributes(attribute.String(telemetry.KeyTenant, tenant)))
		})
		return nil
	}, used, limit, remaining, share, paused, exhausts, brk)
	return ms, err
}

// jobNote is what Handle found out about a job that the job's metrics are
// labelled by.
type jobNote struct {
	application string
	reused      bool // the export was stored by an earlier attempt
}

type noteKey struct{}

// noteOf is the job's note in ctx, or one nobody reads (Handle called
// outside countJobs).
func noteOf(ctx context.Context) *jobNote {
	if n, ok := ctx.Value(noteKey{}).(*jobNote); ok {
		return n
	}
	return &jobNote{}
}

// countJobs is the stage's metrics middleware (worker.Config.Middleware):
// per job, MetricDuration and MetricJobs by application, outcome and reason.
// Handle leaves the application and whether the export was reused in the
// note this puts in the message's context.
func (f *Fetcher) countJobs(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		start := f.now()
		note := &jobNote{}
		m.SetContext(context.WithValue(m.Context(), noteKey{}, note))
		out, err := h(m)
		f.metrics.outcome(m.Context(), note.application, start, err, note.reused)
		return out, err
	}
}

// outcome records one handled job.
func (ms *metrics) outcome(ctx context.Context, app string, start time.Time, err error, reused bool) {
	out, reason := "ok", ""
	switch {
	case err != nil:
		out, reason = failure.ClassOf(err).String(), failure.Label(failure.ReasonOf(err))
	case reused:
		out = "reused"
	}
	attrs := []attribute.KeyValue{attribute.String(telemetry.KeyApplication, app), attribute.String("outcome", out)}
	ms.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	ms.jobs.Add(ctx, 1, metric.WithAttributes(append(attrs, attribute.String("reason", reason))...))
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (ms *metrics) bytes(ctx context.Context, app string, n int64) {
	ms.bytesC.Add(ctx, n, metric.WithAttributes(attribute.String(telemetry.KeyApplication, app)))
}

func (ms *metrics) throttledUpstream(ctx context.Context, app string) {
	ms.throttled.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.KeyApplication, app)))
}

func (ms *metrics) deprecated(ctx context.Context, app string) {
	ms.deprecatedC.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.KeyApplication, app)))
}
