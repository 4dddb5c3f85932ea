package publisher

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// Stage is the name of the publisher stage: its dead letters go to
// dlq.publish.<tenant>.
const Stage = "publish"

// SpanName is the name of each export's span.
const SpanName = "publisher.export"

// WorkerConfig is the publisher's consumer: exports.fetched.> on the EXPORTS
// stream, durable "publisher", one message at a time across every replica
// (a tenant's exports must be applied in the order they were fetched); each
// export in a span named SpanName, its tenant checked against its subject's
// (one tenant's export must never become another's state).
func WorkerConfig() worker.Config {
	return worker.Config{Stage: Stage, Stream: bus.StreamExports, Consumer: "publisher",
		FilterSubject: messages.ExportsSubjects, MaxAckPending: 1, TenantOf: messages.ParseFetchedSubject,
		PayloadTenant: exportTenant, SpanName: SpanName}
}

// exportTenant is the tenant a fetched export names.
func exportTenant(m *message.Message) (string, error) {
	fe, err := messages.DecodeWatermill[messages.FetchedExport](m)
	return fe.Tenant, err
}

// Run runs the stage until ctx is cancelled (see worker.Run): it consumes
// with wcfg (WorkerConfig, adjusted by the caller) on js and handles each
// message with p.Handle, counting each export (MetricExports,
// MetricDuration) in the stage's middleware. tp nil: the Config's
// TracerProvider.
//
// While it runs it also removes, at start and hourly, the spool directories
// a publisher killed midway left in the spool directory (diff.SweepSpool).
func (p *Publisher) Run(ctx context.Context, js jetstream.JetStream, wcfg worker.Config, logger *slog.Logger, tp trace.TracerProvider) error {
	if tp == nil {
		tp = p.cfg.TracerProvider
	}
	wcfg.Middleware = append(wcfg.Middleware[:len(wcfg.Middleware):len(wcfg.Middleware)], p.countExports)
	var sweeping sync.WaitGroup
	defer sweeping.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	sweeping.Go(func() { p.sweepSpool(sctx, logger) })
	return worker.Run(ctx, js, wcfg, p.Handle, logger, tp)
}

// SpoolOrphanAge is how long a spool directory must have gone unwritten
// before the sweep removes it: a diff writes its spool while it scans, for
// seconds to minutes.
const SpoolOrphanAge = time.Hour

func (p *Publisher) sweepSpool(ctx context.Context, logger *slog.Logger) {
	dir := p.cfg.Diff.SpoolDir
	if dir == "" {
		dir = os.TempDir() // diff.Config's default
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := diff.SweepSpool(dir, SpoolOrphanAge)
		if err != nil {
			logger.Warn("sweeping abandoned spool directories failed", "err", err)
		} else if n > 0 {
			logger.Info("abandoned spool directories removed", "dirs", n, "spool_dir", dir)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
