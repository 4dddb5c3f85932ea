package publisher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// Stage is the name of the publisher stage: its dead letters go to
// dlq.publish.<tenant>.
const Stage = "publish"

// WorkerConfig is the publisher's consumer: exports.fetched.> on the EXPORTS
// stream, durable "publisher", one message at a time across every replica
// (a tenant's exports must be applied in the order they were fetched).
func WorkerConfig() worker.Config {
	return worker.Config{Stage: Stage, Stream: bus.StreamExports, Consumer: "publisher",
		FilterSubject: messages.ExportsSubjects, MaxAckPending: 1, TenantOf: messages.ParseFetchedSubject}
}

// Run runs the stage until ctx is cancelled (see worker.Run): it consumes
// with wcfg (WorkerConfig, adjusted by the caller) on js and handles each
// message with p.Handle.
//
// While it runs it also removes, at start and hourly, the spool directories
// a publisher killed midway left in the spool directory (diff.SweepSpool).
func (p *Publisher) Run(ctx context.Context, js jetstream.JetStream, wcfg worker.Config, logger *slog.Logger, tp trace.TracerProvider) error {
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

// checkSubject refuses a fetched export whose subject names another tenant
// than its body: one tenant's export must never become another's state.
func checkSubject(ctx context.Context, fe messages.FetchedExport) error {
	subj := worker.Subject(ctx)
	if subj == "" {
		return nil // called outside the worker runtime
	}
	tenant, err := messages.ParseFetchedSubject(subj)
	if err != nil {
		return failure.New(failure.Permanent, failure.ReasonInvalidSubject, err)
	}
	if tenant != fe.Tenant {
		return failure.New(failure.Permanent, failure.ReasonTenantMismatch,
			fmt.Errorf("fetched export %s of tenant %s came on the subject of tenant %s", fe.ExportID, fe.Tenant, tenant))
	}
	return nil
}
