// Package publisher is the stage that turns a tenant's fetched PIFU export into
// change events: it parses the stored export as a stream, diffs it against the
// tenant's last snapshot (internal/diff) and publishes the changes on the LMS
// stream, between an export.started and an export.completed boundary event.
//
// Exactly once in effect: every event carries a deterministic id as its
// Nats-Msg-Id, and the tenant's new snapshot is stored only after every event
// of the export is acknowledged by JetStream. A publisher that dies anywhere
// before that leaves the old snapshot in place; the redo computes the same
// changes with the same ids and, finding the tenant's last event in the LMS
// stream to be the export's own, sends only what the stream does not hold
// (see resume.go), however long after the first attempt it runs: the
// stream's duplicate window is a second line, not the one the redo relies
// on. A redo after the snapshot was stored finds the export already applied
// and does nothing.
//
// Retention of exports: a tenant's snapshot names the export object it came
// from, because the next diff reads that export again for the previous values
// of updated and deleted records. Once a new snapshot is stored, the export
// object of the one it replaced is deleted (unless it is the same object).
// Exports that end in the dead-letter stream are kept for an operator's replay
// (the store's max age removes them in the end).
package publisher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// Publisher publishes the changes of fetched exports. It is safe for
// concurrent use on different tenants; the worker's MaxAckPending of 1 keeps
// one tenant's exports in order.
type Publisher struct {
	cfg       Config
	nc        *nats.Conn
	js        jetstream.JetStream // for the boundary events (each export's change events have a context of their own)
	exports   Objects
	snapshots Objects
	metrics   *metrics
	lms       lmsStream // for what a redo finds of its export
}

// New returns a Publisher that publishes on nc and reads the exports and
// snapshots object stores (bus.Stores.Exports and .Snapshots). It does not
// own nc.
func New(nc *nats.Conn, exports, snapshots Objects, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.Window))
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream: %w", err)
	}
	ms, err := newMetrics(cfg.Meter.Meter("github.com/skolebuss/skolebuss/internal/publisher"))
	if err != nil {
		return nil, fmt.Errorf("publisher: metrics: %w", err)
	}
	return &Publisher{cfg: cfg, nc: nc, js: js, exports: exports, snapshots: snapshots, metrics: ms}, nil
}

// Outcome is what one export did.
type Outcome struct {
	Tenant, ExportID string
	// AlreadyApplied: the tenant's snapshot came from this export already
	// (a redelivery after the snapshot was stored); nothing was published.
	AlreadyApplied bool
	Counts         map[pifu.Entity]messages.Counts
	// Events is the number of change events published; Duplicates how many
	// of them the stream had already (a redo).
	Events, Duplicates int
	Checksum           string
	// Findings are what the boundaries told of the export's records that
	// are not whole (messages.Boundary.Findings); nil when none.
	Findings map[string]int
	// Took is the whole export; Diffed the part until the changes were known
	// (parsing, hashing, spooling), the rest is publishing and storing.
	Took, Diffed time.Duration
}

// Handle is the worker handler for exports.fetched.<tenant>: it decodes the
// FetchedExport and processes it. See Process for the errors. The span,
// the export's metrics and the check that the export's tenant is its
// subject's are the worker's middleware (WorkerConfig, Run).
func (p *Publisher) Handle(ctx context.Context, m *message.Message) error {
	fe, err := messages.DecodeWatermill[messages.FetchedExport](m)
	if err != nil {
		return err
	}
	out, err := p.Process(ctx, fe)
	noteOutcome(ctx, out)
	return err
}

// Process publishes the changes of one fetched export and then makes its
// state the tenant's.
//
// Errors are classified for the worker: a held export is permanent with
// reason failure.ReasonDeletionHeld (and wraps *diff.HeldError); a document that does
// not parse is permanent ("invalid_document", with line and column), and
// nothing is published for it; a missing export object is permanent
// ("export_missing", or "previous_export_missing" for the export the snapshot
// came from); a failed or unacknowledged publish and the bus being away are
// transient; a redo that finds changes of the export in the LMS stream that
// it does not compute is permanent ("redo_mismatch"). Cancelling ctx stops
// the work and returns an error wrapping ctx.Err(); what was published stays
// published and the redo completes it.
//
// Process adds the export's ids and counts to the span in ctx (the worker
// starts one per message) and counts the events it published and the time
// the tenant's state was applied; the export's outcome and duration are
// counted by the stage's middleware (Run).
func (p *Publisher) Process(ctx context.Context, fe messages.FetchedExport) (out Outcome, err error) {
	start := time.Now()
	span := trace.SpanFromContext(ctx)
	telemetry.Set(span, telemetry.Export(fe.ExportID), telemetry.Job(fe.JobID))
	defer func() {
		if err == nil {
			p.metrics.applied(ctx, fe.Tenant, out)
		}
	}()
	out = Outcome{Tenant: fe.Tenant, ExportID: fe.ExportID}

	st, err := LoadState(ctx, p.snapshots, fe.Tenant)
	if err != nil {
		return out, err
	}
	if st.Snapshot != nil && st.Snapshot.ExportID() == fe.ExportID {
		out.AlreadyApplied = true
		p.cfg.Logger.Info("export already applied", "tenant", fe.Tenant, "export_id", fe.ExportID)
		return out, nil
	}
	exp, err := openExport(ctx, p.exports, fe.Object, fe.SHA256, failure.ReasonExportMissing)
	if err != nil {
		return out, err
	}
	defer exp.Close()

	r, err := newRun(p, fe, traceHeader(ctx), start)
	if err != nil {
		return out, err
	}
	// emit encodes each change into its message before it returns: it
	// borrows the change's object.
	in := diff.Input{Tenant: fe.Tenant, ExportID: fe.ExportID, Prev: st.Snapshot, Next: exp, OnPlan: r.started, Borrow: true}
	if st.Snapshot != nil {
		in.OpenPrev = opener(p.exports, st)
	}
	dcfg := p.cfg.Diff
	dcfg.Force = fe.Force
	res, err := diff.Run(ctx, dcfg, in, r.emit)
	if err != nil {
		if r.s != nil {
			r.s.abandon(err)
		}
		return out, classify(fe, err)
	}
	stored, dups, err := r.s.wait(ctx)
	if err != nil {
		return out, err
	}
	// Changes a redo found in the stream count as stored duplicates.
	stored, dups = stored+r.resume.skipped, dups+r.resume.skipped
	if stored != res.Emitted {
		return out, failure.Transientf(failure.ReasonPublishIncomplete, "export %s of tenant %s: %d changes emitted, %d acknowledged",
			fe.ExportID, fe.Tenant, res.Emitted, stored)
	}
	if err := r.resume.check(fe.Tenant, fe.ExportID); err != nil {
		return out, err
	}
	out.Counts = countsOf(res.Plan)
	out.Events, out.Duplicates = res.Emitted, dups
	out.Checksum = messages.FormatChecksum(res.Snapshot.Checksum())
	out.Findings = r.findings
	if err := r.completed(ctx, out.Counts, out.Checksum); err != nil {
		return out, err
	}
	if err := storeState(ctx, p.snapshots, res.Snapshot, fe.Object); err != nil {
		return out, err
	}
	if st.ExportObject != "" && st.ExportObject != fe.Object {
		if err := p.exports.Delete(ctx, st.ExportObject); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			// The new state is stored: the export is done. The old
			// object only costs space until the store's max age.
			p.cfg.Logger.Warn("deleting the previous export failed", "tenant", fe.Tenant, "object", st.ExportObject, "err", err)
		}
	}
	out.Took, out.Diffed = time.Since(start), r.planned
	total := res.Total()
	telemetry.Set(span, telemetry.Count("created", int64(total.Created)), telemetry.Count("updated", int64(total.Updated)),
		telemetry.Count("deleted", int64(total.Deleted)), telemetry.Count("unchanged", int64(total.Unchanged)),
		telemetry.Count("events", int64(out.Events)), telemetry.Count("duplicates", int64(dups)))
	p.cfg.Logger.Info("export published", "tenant", fe.Tenant, "export_id", fe.ExportID, "events", out.Events,
		"created", total.Created, "updated", total.Updated, "deleted", total.Deleted, "unchanged", total.Unchanged,
		"duplicates", dups, "dangling_memberships", res.Findings.DanglingMemberships, "group_members", res.Findings.GroupMembers,
		"forced", fe.Force, "took", out.Took.Round(time.Millisecond), "diffed", out.Diffed.Round(time.Millisecond))
	return out, nil
}

// classify gives the errors of diff.Run their class where the diff leaves
// them unclassified.
func classify(fe messages.FetchedExport, err error) error {
	var se *pifu.SyntaxError
	if errors.As(err, &se) {
		return failure.New(failure.Permanent, failure.ReasonInvalidDocument,
			fmt.Errorf("export %s of tenant %s does not parse at line %d, column %d: %w", fe.ExportID, fe.Tenant, se.Line, se.Column, err))
	}
	return err
}

func countsOf(p diff.Plan) map[pifu.Entity]messages.Counts {
	out := make(map[pifu.Entity]messages.Counts, len(p.Counts))
	for e, c := range p.Counts {
		out[e] = messages.Counts{Created: c.Created, Updated: c.Updated, Deleted: c.Deleted, Unchanged: c.Unchanged,
			Total: p.Snapshot.Count(e)}
	}
	return out
}

// traceHeader is the trace context of ctx as NATS headers, computed once
// and copied into every event.
func traceHeader(ctx context.Context) nats.Header {
	m := &nats.Msg{Header: nats.Header{}}
	telemetry.InjectNATS(ctx, m)
	return m.Header
}
