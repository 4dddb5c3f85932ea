package worker

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// Outcomes of a message, the outcome attribute of skolebuss.stage.messages.
const (
	outcomeOK           = "ok"
	outcomeRetried      = "retried"
	outcomeThrottled    = "throttled"
	outcomeDeadLettered = "dead_lettered"
	outcomeHandedBack   = "handed_back"
)

// middleware is the chain around every handler, outermost first (see the
// package documentation for what each does and why in this order).
func (r *runtime) middleware() []message.HandlerMiddleware {
	mw := []message.HandlerMiddleware{
		r.measure,
		r.classify,
		telemetry.Middleware(r.tracer, r.cfg.SpanName, r.spanAttrs),
	}
	mw = append(mw, r.cfg.Middleware...)
	if r.cfg.PayloadTenant != nil {
		mw = append(mw, r.checkTenant)
	}
	return append(mw, r.recoverer)
}

// measure is the metrics middleware: skolebuss.stage.duration for the
// message, and skolebuss.stage.messages by the outcome classify settled on.
func (r *runtime) measure(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		start := time.Now()
		out, err := h(m)
		stage := attribute.String("stage", r.cfg.Stage)
		r.duration.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(stage))
		if d := deliveryOf(m.Context()); d != nil && d.outcome != "" {
			r.outcomes.Add(context.Background(), 1, metric.WithAttributes(stage, attribute.String("outcome", d.outcome)))
		}
		return out, err
	}
}

// classify is the classification middleware, the only one that decides a
// message's fate: it maps the error of what it wraps to an ack (nil), a nak
// with a delay (an error; the delay is left on the delivery for the
// subscriber), or a dead letter and an ack; it counts and clears real
// attempts, and logs the decision. See the package documentation.
func (r *runtime) classify(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		out, err := h(m)
		ctx := m.Context() // as the middleware inside left it: with the message's span
		d := deliveryOf(ctx)
		if d == nil {
			return out, err
		}
		if err == nil {
			r.clearAttempts(d)
			d.outcome = outcomeOK
			return out, nil
		}
		log := r.logger.With("tenant", d.tenant, "stream_seq", d.meta.Sequence.Stream, "attempt", d.attempt,
			"class", failure.ClassOf(err).String(), "reason", failure.ReasonOf(err))
		switch failure.ClassOf(err) {
		case failure.Permanent:
			return r.deadLetter(ctx, d, err, log)
		case failure.Throttled:
			d.nakDelay, _ = failure.RetryAfter(err)
			log.Info("message delayed", "delay", d.nakDelay)
			d.outcome = outcomeThrottled
			return nil, err
		case failure.Canceled:
			log.Info("message handed back")
			d.outcome = outcomeHandedBack
			return nil, err
		default:
			if d.attempt >= r.cfg.MaxAttempts {
				return r.deadLetter(ctx, d, err, log)
			}
			if err := r.recordAttempt(d); err != nil {
				log.Warn("attempt not recorded", "err", err)
			}
			d.nakDelay = r.cfg.Backoff[min(d.attempt, len(r.cfg.Backoff))-1]
			log.Warn("attempt failed; retrying", "delay", d.nakDelay, "err", err)
			d.outcome = outcomeRetried
			return nil, err
		}
	}
}

// deadLetter stores the failed message on dlq.<stage>.<tenant>, in the trace
// of ctx, and acks it; if the dead letter cannot be stored, the message is
// nak'ed and comes back.
func (r *runtime) deadLetter(ctx context.Context, d *delivery, cause error, log *slog.Logger) ([]*message.Message, error) {
	raw := &nats.Msg{Subject: d.msg.Subject(), Header: d.msg.Headers(), Data: d.msg.Data()}
	tenant := d.tenant
	if tenant == "" {
		tenant = messages.UnknownTenant
	}
	dl := messages.NewDeadLetter(r.cfg.Stage, tenant, raw, cause, d.attempt, telemetry.TraceID(ctx), time.Now().UTC())
	nm, err := messages.Encode(dl)
	if err == nil {
		telemetry.InjectNATS(ctx, nm)
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = r.js.PublishMsg(pctx, nm)
		cancel()
	}
	if err != nil {
		// Not acked: the message stays and comes back; nothing is lost.
		log.Error("dead letter not stored; message kept for redelivery", "err", err)
		d.nakDelay = r.cfg.Backoff[0]
		d.outcome = outcomeRetried
		return nil, fmt.Errorf("store dead letter: %w", err)
	}
	log.Error("message dead-lettered", "err", cause)
	r.clearAttempts(d)
	d.outcome = outcomeDeadLettered
	return nil, nil
}

// spanAttrs are the attributes of a message's span: tenant, stage, attempt.
func (r *runtime) spanAttrs(m *message.Message) []telemetry.Attr {
	as := []telemetry.Attr{telemetry.Stage(r.cfg.Stage)}
	if d := deliveryOf(m.Context()); d != nil {
		as = append(as, telemetry.Tenant(d.tenant), telemetry.Count("attempt", int64(d.attempt)))
	}
	return as
}

// checkTenant is the tenant middleware: a message whose body names another
// tenant than its subject is refused (permanent, "tenant_mismatch"), so one
// tenant's data never becomes another's; so is a subject that names none
// ("invalid_subject"). A body that does not decode fails with its decoding
// error (permanent).
func (r *runtime) checkTenant(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		subject := Subject(m.Context())
		want, err := r.cfg.TenantOf(subject)
		if err != nil {
			return nil, failure.New(failure.Permanent, failure.ReasonInvalidSubject, fmt.Errorf("subject %s: %w", subject, err))
		}
		got, err := r.cfg.PayloadTenant(m)
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, failure.Permanentf(failure.ReasonTenantMismatch, "%s message of tenant %s arrived on the subject of tenant %s (%s)",
				r.cfg.Stage, got, want, subject)
		}
		return h(m)
	}
}

// recoverer is the innermost middleware: a handler's panic becomes a
// transient error ("panic", the panic value in its text), so one bad message
// cannot kill the stage. The stack goes to the log and onto the message's
// span (an event "panic" with exception.stacktrace), never into the error's
// text, so neither metric labels nor dead letters carry it.
func (r *runtime) recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) (out []*message.Message, err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			stack := string(debug.Stack())
			err = failure.New(failure.Transient, failure.ReasonPanic, fmt.Errorf("handler panicked: %v", p))
			ctx := m.Context()
			trace.SpanFromContext(ctx).AddEvent("panic", trace.WithAttributes(
				attribute.String("exception.type", fmt.Sprintf("%T", p)), attribute.String("exception.stacktrace", stack)))
			log := r.logger
			if d := deliveryOf(ctx); d != nil {
				log = log.With("tenant", d.tenant, "stream_seq", d.meta.Sequence.Stream, "attempt", d.attempt)
			}
			log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", stack, "trace_id", telemetry.TraceID(ctx))
		}()
		return h(m)
	}
}
