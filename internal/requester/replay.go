package requester

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// ErrNoDeadLetter is returned by Replay for a sequence the DLQ stream does
// not hold (never stored, or expired, or deleted).
var ErrNoDeadLetter = errors.New("no dead letter")

// ErrNotReplayable is returned by Replay for a dead letter that is neither an
// export job nor a fetched export, or whose message does not decode.
var ErrNotReplayable = errors.New("dead letter cannot be replayed")

// Replayed says what Replay published.
type Replayed struct {
	// DeadLetter is the dead letter that was replayed.
	DeadLetter messages.DeadLetter
	// Kind is "export job" or "fetched export".
	Kind string
	// ID is the replay's message id, replay-<seq>: replaying one dead letter
	// twice within the stream's duplicate window stores it once.
	ID      string
	Subject string
	// Seq is the new message's sequence in its stream (JOBS or EXPORTS).
	Seq uint64
	// Duplicate is true when this dead letter was already replayed within
	// the duplicate window: nothing new was stored.
	Duplicate bool
	Force     bool
}

// ReplayID is the id of the replay of the dead letter at seq.
func ReplayID(seq uint64) string { return "replay-" + strconv.FormatUint(seq, 10) }

// Replay reads the dead letter at sequence seq of the DLQ stream and
// publishes its message again under the id replay-<seq>: a failed export job
// as a new job (reason replay, replay_of the failed job's id) on
// jobs.export.<tenant>; a failed fetched export (the publisher gave up on it,
// for example because it would delete too much) again on
// exports.fetched.<tenant>, pointing at the same stored export, which must
// still exist. With force, the export is applied past the publisher's
// deletion threshold: a fetched export is republished with Force set, a job
// carries messages.HeaderForce, which the fetcher turns into Force on its export. The dead letter stays in the DLQ stream. A new
// trace starts for the replay. ctx bounds the reads and the publish.
func (r *Requester) Replay(ctx context.Context, seq uint64, force bool) (Replayed, error) {
	if seq == 0 {
		return Replayed{}, fmt.Errorf("%w: sequence 0 (sequences start at 1)", ErrNoDeadLetter)
	}
	stream, err := r.js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return Replayed{}, fmt.Errorf("replay %d: stream %s: %w", seq, bus.StreamDLQ, err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Replayed{}, fmt.Errorf("%w with sequence %d in stream %s", ErrNoDeadLetter, seq, bus.StreamDLQ)
	}
	if err != nil {
		return Replayed{}, fmt.Errorf("replay %d: read dead letter: %w", seq, err)
	}
	dl, err := messages.Decode[messages.DeadLetter](&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		return Replayed{}, fmt.Errorf("%w: message %d of %s is not a dead letter: %v", ErrNotReplayable, seq, bus.StreamDLQ, err)
	}
	failed := &nats.Msg{Subject: dl.Message.Subject, Header: nats.Header(dl.Message.Headers), Data: dl.Message.Data}
	out := Replayed{DeadLetter: dl, ID: ReplayID(seq), Force: force}
	var extra nats.Header
	if force {
		extra = nats.Header{messages.HeaderForce: []string{messages.ForceValue}}
	}

	if _, err := messages.ParseJobSubject(failed.Subject); err == nil {
		job, err := messages.Decode[messages.ExportJob](failed)
		if err != nil {
			return Replayed{}, fmt.Errorf("%w: dead letter %d holds an export job that does not decode: %v", ErrNotReplayable, seq, err)
		}
		again := messages.ExportJob{
			JobID: out.ID, Tenant: job.Tenant, Application: job.Application,
			Reason: messages.ReasonReplay, ReplayOf: job.JobID, RequestedAt: r.cfg.Now().UTC(),
		}
		res, err := r.publish(ctx, again, extra)
		if err != nil {
			return Replayed{}, fmt.Errorf("replay %d: %w", seq, err)
		}
		out.Kind, out.Subject, out.Seq, out.Duplicate = "export job", failed.Subject, res.Seq, res.Duplicate
		return out, nil
	}
	if _, err := messages.ParseFetchedSubject(failed.Subject); err == nil {
		fe, err := messages.Decode[messages.FetchedExport](failed)
		if err != nil {
			return Replayed{}, fmt.Errorf("%w: dead letter %d holds a fetched export that does not decode: %v", ErrNotReplayable, seq, err)
		}
		fe.Force = force
		return r.replayFetched(ctx, out, fe)
	}
	return Replayed{}, fmt.Errorf("%w: dead letter %d (stage %s) is a message on %s; replay handles export jobs and fetched exports",
		ErrNotReplayable, seq, dl.Stage, failed.Subject)
}

// replayFetched publishes a dead-lettered fetched export again, with the
// replay id as its Nats-Msg-Id (its own key would collapse into the original
// within the EXPORTS duplicate window, unless forced).
func (r *Requester) replayFetched(ctx context.Context, out Replayed, fe messages.FetchedExport) (Replayed, error) {
	store, err := r.js.ObjectStore(ctx, bus.ObjectExports)
	if err != nil {
		return Replayed{}, fmt.Errorf("replay %s: object store %s: %w", out.ID, bus.ObjectExports, err)
	}
	if _, err := store.GetInfo(ctx, fe.Object); err != nil {
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return Replayed{}, fmt.Errorf("%w: the stored export %s of job %s is gone (a newer applied export replaced it, or it was deleted); request a new export of tenant %s instead",
				ErrNotReplayable, fe.Object, fe.JobID, fe.Tenant)
		}
		return Replayed{}, fmt.Errorf("replay %s: look up export %s: %w", out.ID, fe.Object, err)
	}
	ctx, span := telemetry.Start(ctx, r.tracer, "replay fetched export", trace.SpanKindProducer,
		telemetry.Stage("replay"), telemetry.Tenant(fe.Tenant), telemetry.Application(fe.Application),
		telemetry.Job(fe.JobID), telemetry.Export(fe.ExportID))
	defer span.End()
	msg, err := messages.Encode(fe)
	if err != nil {
		telemetry.RecordError(span, err)
		return Replayed{}, fmt.Errorf("replay %s: %w", out.ID, err)
	}
	msg.Header[messages.HeaderMsgID] = []string{out.ID}
	telemetry.InjectNATS(ctx, msg)
	ack, err := r.js.PublishMsg(ctx, msg)
	if err != nil {
		telemetry.RecordError(span, err)
		return Replayed{}, fmt.Errorf("replay %s: publish fetched export of tenant %s: %w", out.ID, fe.Tenant, err)
	}
	r.logger.Info("fetched export replayed", "tenant", fe.Tenant, "job_id", fe.JobID, "export_id", fe.ExportID,
		"replay_id", out.ID, "force", out.Force, "duplicate", ack.Duplicate, "trace_id", telemetry.TraceID(ctx))
	out.Kind, out.Subject, out.Seq, out.Duplicate = "fetched export", msg.Subject, ack.Sequence, ack.Duplicate
	return out, nil
}
