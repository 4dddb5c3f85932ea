package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"golang.org/x/sync/errgroup"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
)

// Deps are what the stage works with.
type Deps struct {
	// Conn is the connection the vendors' events are published on (each
	// export on a JetStream context of its own); JS reads the LMS stream.
	Conn *nats.Conn
	JS   jetstream.JetStream
	// Store is the object store "fanout" (bus.ProvisionVendors).
	Store jetstream.ObjectStore
	// Snapshots and Exports are the publisher's object stores "snapshots"
	// and "exports", read for a resync: the tenant's current state.
	Snapshots, Exports jetstream.ObjectStore
	Logger             *slog.Logger
	// Meter makes the stage's metrics (MetricMismatches); nil for none.
	Meter metric.MeterProvider
}

// MetricMismatches counts the exports whose canonical change events, as
// read from the LMS stream, did not add up to the checksum of their
// export.completed (change events lost), one per vendor delivery, each
// healed by a resync. Attributes: vendor, skolebuss.tenant. Nothing
// personal.
const MetricMismatches = "skolebuss.fanout.checksum_mismatches"

// Fanout is the stage. It is safe for concurrent use; Run it once.
type Fanout struct {
	cfg   Config
	deps  Deps
	cache *cache
	// mismatches counts the exports healed by a resync (Mismatches), and
	// mismatched is the metric of them.
	mismatches atomic.Int64
	mismatched metric.Int64Counter
}

// New returns the stage. The vendors' streams and the object store must be
// provisioned (bus.ProvisionVendors).
func New(cfg Config, deps Deps) (*Fanout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Conn == nil || deps.JS == nil || deps.Store == nil || deps.Snapshots == nil || deps.Exports == nil {
		return nil, errors.New("fanout: a connection, JetStream and the object stores fanout, snapshots and exports are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Meter == nil {
		deps.Meter = metricnoop.NewMeterProvider()
	}
	cfg = cfg.withDefaults()
	f := &Fanout{cfg: cfg, deps: deps, cache: newCache(cfg.CacheEvents, cfg.Vendors)}
	var err error
	if f.mismatched, err = deps.Meter.Meter("github.com/skolebuss/skolebuss/internal/fanout").Int64Counter(MetricMismatches,
		metric.WithDescription("exports whose change events did not add up to their checksum, each healed by a resync, by vendor and tenant")); err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	return f, nil
}

// Run delivers to every vendor with linked tenants until ctx ends, each
// vendor on its own consumer and goroutine, one export at a time in the
// order of the exports' completion. An export that fails is tried again
// after Config.Retry; the export in hand when ctx ends is handed back (a
// killed process's after AckWait) and redone with the same ids. It returns
// nil when ctx ends, or the first error that stops a vendor's consumer.
//
// First, for each vendor, it unlinks every tenant the vendor has state of
// in the object store "fanout" that the configuration no longer links to
// it: the vendor's consumer is narrowed to its tenants (deleted when it has
// none), so nothing more of such a tenant flows to the vendor, then one
// TenantUnlinked is published on the vendor's stream and the tenant's state
// removed. An error there stops Run.
//
// While it runs it answers the vendors' resync requests (queue group
// QueueGroup), and each vendor's loop does, between two exports, a resync
// of every linked tenant with exported state the vendor has no state of
// (at its start) and the resyncs asked for.
func (f *Fanout) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	if len(f.cfg.Vendors) > 0 {
		sub, err := f.serve(ctx)
		if err != nil {
			return fmt.Errorf("fanout: answer resync requests: %w", err)
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	for _, v := range f.cfg.Vendors {
		cons, err := f.consumer(ctx, v)
		if err == nil {
			err = f.unlinkAll(ctx, v)
		}
		if err != nil {
			if ctx.Err() != nil {
				break // stopped while starting
			}
			cancel() // the vendors started so far stop
			_ = g.Wait()
			return err
		}
		if cons != nil {
			g.Go(func() error { return f.run(ctx, v, cons) })
		}
	}
	return g.Wait()
}

// unlinkAll unlinks from v every tenant it has state of but is no longer
// linked to. The vendor's consumer must already deliver v's tenants only.
func (f *Fanout) unlinkAll(ctx context.Context, v Vendor) error {
	gone, err := f.unlinked(ctx, v)
	if err != nil {
		return err
	}
	for _, t := range gone {
		if err := f.unlink(ctx, v, t); err != nil {
			return err
		}
	}
	return nil
}

// consumer creates or updates the vendor's durable consumer: the
// export.completed events of its tenants, one in hand at a time. The
// server replaces the filter of an existing consumer with the current
// tenants'. A vendor without tenants has no consumer: it is deleted, and
// consumer returns nil.
func (f *Fanout) consumer(ctx context.Context, v Vendor) (jetstream.Consumer, error) {
	if len(v.Tenants) == 0 {
		err := f.deps.JS.DeleteConsumer(ctx, bus.StreamLMS, ConsumerName(v.Name))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("fanout: delete the consumer of vendor %s: %w", v.Name, err)
		}
		return nil, nil
	}
	var filters []string
	for _, t := range v.Tenants {
		s, err := messages.BoundarySubject(t, messages.PhaseCompleted)
		if err != nil {
			return nil, err
		}
		filters = append(filters, s)
	}
	cons, err := f.deps.JS.CreateOrUpdateConsumer(ctx, bus.StreamLMS, jetstream.ConsumerConfig{
		Durable: ConsumerName(v.Name), Description: "fan-out to vendor " + v.Name,
		FilterSubjects: filters, AckPolicy: jetstream.AckExplicitPolicy, AckWait: f.cfg.AckWait,
		MaxAckPending: 1, DeliverPolicy: jetstream.DeliverAllPolicy, Replicas: f.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("fanout: consumer of vendor %s: %w", v.Name, err)
	}
	return cons, nil
}

func (f *Fanout) run(ctx context.Context, v Vendor, cons jetstream.Consumer) error {
	log := f.deps.Logger.With("vendor", v.Name)
	joined := false
	for ctx.Err() == nil {
		// Between exports: the tenants v has no state of get their whole
		// state (once, at the start), and the resyncs asked for are done.
		var err error
		if !joined {
			err = f.joins(ctx, v)
			joined = err == nil
		}
		if err == nil {
			err = f.resyncs(ctx, v)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("fan-out: resync not done; trying again", "err", err)
			sleep(ctx, f.cfg.Retry)
			continue
		}
		m, err := cons.Next(jetstream.FetchMaxWait(f.cfg.Poll))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("fan-out: fetch", "err", err)
			sleep(ctx, f.cfg.Retry)
			continue
		}
		if err := f.handle(ctx, v, m); err != nil {
			if ctx.Err() != nil {
				_ = m.Nak() // handed back at once: redone by the next run
				return nil
			}
			log.Error("fan-out: export not delivered; trying again", "subject", m.Subject(), "err", err)
			_ = m.NakWithDelay(f.cfg.Retry)
		}
	}
	return nil
}

// handle delivers the export whose export.completed is m, telling the
// server it is in progress while it works, and acknowledges m.
func (f *Fanout) handle(ctx context.Context, v Vendor, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	b, err := messages.Decode[messages.Boundary](&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		return err
	}
	if !slices.Contains(v.Tenants, b.Tenant) {
		// In hand before the tenant was unlinked from the vendor: it is
		// no longer the vendor's.
		return m.DoubleAck(ctx)
	}
	work, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with work
		t := time.NewTicker(f.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-work.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	if err := f.joinBefore(work, v, b); err != nil {
		return fmt.Errorf("export %s of %s: %w", b.ExportID, b.Tenant, err)
	}
	start := time.Now()
	if err := f.deliver(work, v, b, meta.Sequence.Stream); err != nil {
		return fmt.Errorf("export %s of %s: %w", b.ExportID, b.Tenant, err)
	}
	f.deps.Logger.Info("fan-out: export delivered", "vendor", v.Name, "tenant", b.Tenant, "export_id", b.ExportID,
		"duration", time.Since(start))
	return m.DoubleAck(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
