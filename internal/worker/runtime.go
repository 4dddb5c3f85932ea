package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

type runtime struct {
	cfg      Config
	js       jetstream.JetStream
	cons     jetstream.Consumer
	attempts jetstream.KeyValue
	handler  Handler
	logger   *slog.Logger
	tracer   trace.Tracer
	outcomes metric.Int64Counter
	duration metric.Float64Histogram

	// hard is the handlers' base context: it outlives the Run context by
	// DrainTimeout, so in-flight work can finish at shutdown.
	hard       context.Context
	hardCancel context.CancelFunc
}

func newRuntime(cfg Config, js jetstream.JetStream, cons jetstream.Consumer, attempts jetstream.KeyValue, h Handler, logger *slog.Logger, tp trace.TracerProvider) *runtime {
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	mp := cfg.Meter
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	meter := mp.Meter("github.com/skolebuss/skolebuss/internal/worker")
	outcomes, _ := meter.Int64Counter("skolebuss.stage.messages",
		metric.WithDescription("messages handled by a stage, by outcome: ok, retried, throttled, dead_lettered, handed_back"))
	duration, _ := meter.Float64Histogram("skolebuss.stage.duration",
		metric.WithDescription("time a stage's handler took for one message"), metric.WithUnit("s"))
	r := &runtime{cfg: cfg, js: js, cons: cons, attempts: attempts, handler: h, logger: logger,
		tracer: tp.Tracer("github.com/skolebuss/skolebuss/internal/worker"), outcomes: outcomes, duration: duration}
	r.hard, r.hardCancel = context.WithCancel(context.Background())
	return r
}

func (r *runtime) run(ctx context.Context) error {
	defer r.hardCancel()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.DrainTimeout + 5*time.Second}, watermillLogger(r.logger))
	if err != nil {
		return fmt.Errorf("worker %s: router: %w", r.cfg.Stage, err)
	}
	// The classifier is added first, so it runs outermost and sees the
	// final error of the handler, after the recoverer turned a panic into one.
	router.AddMiddleware(r.classify, recoverer)
	router.AddConsumerHandler(r.cfg.Stage, r.cfg.FilterSubject, &subscriber{r: r}, func(m *message.Message) error {
		return r.handler(m.Context(), m)
	})
	stop := context.AfterFunc(ctx, func() {
		r.logger.Info("stage stopping: no new messages; in-flight work may finish", "drain_timeout", r.cfg.DrainTimeout)
		time.AfterFunc(r.cfg.DrainTimeout, r.hardCancel)
	})
	defer stop()
	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("worker %s: %w", r.cfg.Stage, err)
	}
	return nil
}

// delivery is one JetStream message on its way through the router.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	tenant   string
	attempt  int
	nakDelay time.Duration
	span     trace.Span
}

// classify is the middleware that maps the handler's error to the fate of the
// message; see the package documentation. It returns nil (ack) or an error
// (nak, with the delay it stored on the delivery).
func (r *runtime) classify(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		d, _ := m.Context().Value(keyDelivery).(*delivery)
		start := time.Now()
		out, err := h(m)
		r.duration.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(attribute.String("stage", r.cfg.Stage)))
		if d == nil {
			return out, err
		}
		defer d.span.End()
		ctx := m.Context()
		if err == nil {
			r.clearAttempts(d)
			r.count("ok")
			return out, nil
		}
		telemetry.RecordError(d.span, err)
		log := r.logger.With("tenant", d.tenant, "stream_seq", d.meta.Sequence.Stream, "attempt", d.attempt,
			"class", failure.ClassOf(err).String(), "reason", failure.ReasonOf(err))
		switch failure.ClassOf(err) {
		case failure.Permanent:
			return r.deadLetter(ctx, d, err, log)
		case failure.Throttled:
			d.nakDelay, _ = failure.RetryAfter(err)
			log.Info("message delayed", "delay", d.nakDelay)
			r.count("throttled")
			return nil, err
		case failure.Canceled:
			log.Info("message handed back")
			r.count("handed_back")
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
			r.count("retried")
			return nil, err
		}
	}
}

func (r *runtime) deadLetter(ctx context.Context, d *delivery, cause error, log *slog.Logger) ([]*message.Message, error) {
	raw := &nats.Msg{Subject: d.msg.Subject(), Header: d.msg.Headers(), Data: d.msg.Data()}
	tenant := d.tenant
	if tenant == "" {
		tenant = "unknown"
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
		r.count("retried")
		return nil, fmt.Errorf("store dead letter: %w", err)
	}
	log.Error("message dead-lettered", "err", cause)
	r.clearAttempts(d)
	r.count("dead_lettered")
	return nil, nil
}

func (r *runtime) count(outcome string) {
	r.outcomes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("stage", r.cfg.Stage), attribute.String("outcome", outcome)))
}

func (r *runtime) attemptKey(d *delivery) string {
	return r.cfg.Consumer + "." + strconv.FormatUint(d.meta.Sequence.Stream, 10)
}

// priorAttempts reads how many real attempts failed before this delivery.
func (r *runtime) priorAttempts(meta *jetstream.MsgMetadata) int {
	if meta.NumDelivered <= 1 {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := r.attempts.Get(ctx, r.cfg.Consumer+"."+strconv.FormatUint(meta.Sequence.Stream, 10))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(string(e.Value()))
	return n
}

func (r *runtime) recordAttempt(d *delivery) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := r.attempts.Put(ctx, r.attemptKey(d), []byte(strconv.Itoa(d.attempt)))
	return err
}

func (r *runtime) clearAttempts(d *delivery) {
	if d.attempt <= 1 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.attempts.Purge(ctx, r.attemptKey(d)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		r.logger.Warn("attempt counter not cleared", "key", r.attemptKey(d), "err", err)
	}
}

// recoverer turns a handler's panic into a transient error carrying the panic
// value (never the message), so one bad message cannot kill the stage.
func recoverer(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) (out []*message.Message, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = failure.New(failure.Transient, "panic", fmt.Errorf("handler panicked: %v", p))
			}
		}()
		return h(m)
	}
}
