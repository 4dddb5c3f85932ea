package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
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
	router.AddMiddleware(r.middleware()...)
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

// delivery is one JetStream message on its way through the router. The
// classification middleware writes nakDelay (read by the subscriber when it
// settles the message) and outcome (read by the metrics middleware).
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	tenant   string
	attempt  int
	nakDelay time.Duration
	outcome  string
}

func deliveryOf(ctx context.Context) *delivery {
	d, _ := ctx.Value(keyDelivery).(*delivery)
	return d
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
