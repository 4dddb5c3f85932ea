package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// run is the publishing of one export.
type run struct {
	p       *Publisher
	fe      messages.FetchedExport
	header  nats.Header            // trace context for every message
	enc     *messages.EventEncoder // of the change events: header and time included
	time    time.Time              // ce-time of every message: when the export was fetched
	s       *sender
	resume  resume        // what the LMS stream holds of the export already
	start   time.Time     // of the export's processing
	planned time.Duration // from start to the plan
	// findings are the plan's, told on both boundaries.
	findings map[string]int
}

// started publishes export.started once the whole export has parsed and
// passed the deletion threshold, and opens the window for the changes. It
// first looks up what the LMS stream holds of the export (findResume): a
// redo sends export.started only if the stream does not hold it.
func (r *run) started(ctx context.Context, plan diff.Plan) error {
	r.planned = time.Since(r.start)
	r.findings = findingsOf(plan.Findings)
	counts := make(map[pifu.Entity]messages.Counts, len(plan.Counts))
	for e, c := range plan.Counts {
		counts[e] = messages.Counts{Created: c.Created, Updated: c.Updated, Deleted: c.Deleted, Unchanged: c.Unchanged,
			Total: plan.Snapshot.Count(e)}
	}
	looked := time.Now()
	res, err := r.p.findResume(ctx, r.fe.Tenant, r.fe.ExportID)
	if err != nil {
		return err
	}
	r.resume = res
	if res.started {
		r.p.cfg.Logger.Info("redo of an export: the LMS stream holds part of it", "tenant", r.fe.Tenant, "export_id", r.fe.ExportID,
			"changes_stored", len(res.stored), "completed", res.completed, "looked_up", time.Since(looked).Round(time.Millisecond))
	}
	if !r.resume.started {
		if err := r.boundary(ctx, messages.PhaseStarted, counts, ""); err != nil {
			return err
		}
	}
	s, err := newSender(r.p.nc, r.p.cfg.Window, r.p.cfg.AckTimeout)
	if err != nil {
		return err
	}
	r.s = s
	return nil
}

// emit publishes one change. The object is the canonical JSON diff
// produced: it goes into the body as it is, not marshalled again.
func (r *run) emit(ctx context.Context, c diff.Change) error {
	if skip, err := r.resume.skip(c.ID); skip || err != nil {
		return err
	}
	ev := messages.Event{ID: c.ID, Tenant: r.fe.Tenant, ExportID: r.fe.ExportID, Entity: c.Entity,
		Op: messages.Op(c.Op), Key: c.Key, Time: r.time, Object: c.Object, Previous: c.Previous}
	m := r.s.msg()
	if err := r.enc.EncodeTo(m, ev); err != nil {
		return failure.New(failure.Permanent, failure.ReasonInvalidEvent, fmt.Errorf("change %d: %w", c.Seq, err))
	}
	return r.s.send(ctx, m, what{seq: c.Seq, entity: string(c.Entity), op: string(c.Op)})
}

// completed publishes export.completed after every change is stored.
func (r *run) completed(ctx context.Context, counts map[pifu.Entity]messages.Counts, checksum string) error {
	if r.resume.completed {
		return r.resume.checkCompleted(r.fe.Tenant, r.fe.ExportID, checksum)
	}
	return r.boundary(ctx, messages.PhaseCompleted, counts, checksum)
}

func (r *run) boundary(ctx context.Context, phase messages.Phase, counts map[pifu.Entity]messages.Counts, checksum string) error {
	b := messages.Boundary{ID: messages.BoundaryID(r.fe.Tenant, r.fe.ExportID, phase), Tenant: r.fe.Tenant,
		ExportID: r.fe.ExportID, Phase: phase, Time: r.time, Counts: counts, Checksum: checksum, Findings: r.findings}
	if phase == messages.PhaseStarted {
		b.Upstream = messages.UpstreamOf(r.fe)
	}
	m, err := messages.Encode(b)
	if err != nil {
		return failure.New(failure.Permanent, failure.ReasonInvalidEvent, fmt.Errorf("export.%s: %w", phase, err))
	}
	for k, v := range r.header {
		m.Header[k] = v
	}
	if _, err := r.p.js.PublishMsg(ctx, m); err != nil {
		return classifyPublish(fmt.Errorf("publish export.%s of export %s: %w", phase, r.fe.ExportID, err))
	}
	return nil
}

func newRun(p *Publisher, fe messages.FetchedExport, header nats.Header, start time.Time) (*run, error) {
	enc, err := messages.NewEventEncoder(fe.Tenant, fe.ExportID, fe.FetchedAt, header)
	if err != nil {
		return nil, failure.New(failure.Permanent, failure.ReasonInvalidEvent, fmt.Errorf("export %s of tenant %s: %w", fe.ExportID, fe.Tenant, err))
	}
	return &run{p: p, fe: fe, header: header, enc: enc, time: fe.FetchedAt, start: start}, nil
}

// findingsOf is f as the boundaries carry it: the kinds with a count, nil
// when there is none.
func findingsOf(f diff.Findings) map[string]int {
	if f.IsZero() {
		return nil
	}
	out := make(map[string]int, 2)
	if f.DanglingMemberships > 0 {
		out[messages.FindingDanglingMembership] = f.DanglingMemberships
	}
	if f.GroupMembers > 0 {
		out[messages.FindingGroupMember] = f.GroupMembers
	}
	return out
}
