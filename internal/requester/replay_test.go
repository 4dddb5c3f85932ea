package requester

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
)

// deadLetter stores the dead letter of failed (as stage) in DLQ and returns
// its sequence.
func deadLetter(t *testing.T, js jetstream.JetStream, stage, tenant string, failed *nats.Msg, err error) uint64 {
	t.Helper()
	dl := messages.NewDeadLetter(stage, tenant, failed, err, 3, "0af7651916cd43dd8448eb211c80319c", time.Now())
	m, e := messages.Encode(dl)
	if e != nil {
		t.Fatal(e)
	}
	ack, e := js.PublishMsg(context.Background(), m)
	if e != nil {
		t.Fatal(e)
	}
	return ack.Sequence
}

func TestReplayJob(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	r := newRequester(t, b.JS, Config{Tenants: []Tenant{{ID: tenantA, Application: app}}})
	job := messages.ExportJob{JobID: "demand-x", Tenant: tenantA, Application: app, Reason: messages.ReasonDemand, RequestedAt: time.Now()}
	failed, err := messages.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	failed.Header.Set("Authorization", "Bearer not-for-the-dlq")
	seq := deadLetter(t, b.JS, "fetch", tenantA, failed, failure.Permanentf("forbidden", "export API answered 403"))

	got, err := r.Replay(ctx, seq, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != "export job" || got.ID != ReplayID(seq) || got.Duplicate || got.DeadLetter.Reason != "forbidden" {
		t.Errorf("replayed %+v", got)
	}
	again, err := r.Replay(ctx, seq, false)
	if err != nil || !again.Duplicate {
		t.Errorf("second replay of one dead letter: %+v, %v; want a duplicate", again, err)
	}
	msgs := streamMsgs(t, b.JS, bus.StreamJobs)
	if len(msgs) != 1 {
		t.Fatalf("%d jobs, want 1", len(msgs))
	}
	j, err := messages.Decode[messages.ExportJob](&nats.Msg{Subject: msgs[0].Subject, Header: msgs[0].Header, Data: msgs[0].Data})
	if err != nil {
		t.Fatal(err)
	}
	if j.JobID != ReplayID(seq) || j.Reason != messages.ReasonReplay || j.ReplayOf != "demand-x" || j.Tenant != tenantA {
		t.Errorf("replayed job %+v", j)
	}
	if msgs[0].Header.Get(messages.HeaderForce) != "" || msgs[0].Header.Get("Authorization") != "" {
		t.Errorf("replayed job headers %v", msgs[0].Header)
	}
	if msgs[0].Header.Get("traceparent") == "" {
		t.Error("a replay starts no trace")
	}

	// With force, the job carries the force header for the publisher.
	job.JobID = "demand-y"
	failed2, err := messages.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	seq2 := deadLetter(t, b.JS, "fetch", tenantA, failed2, failure.Permanentf("not_found", "404"))
	if _, err := r.Replay(ctx, seq2, true); err != nil {
		t.Fatal(err)
	}
	msgs = streamMsgs(t, b.JS, bus.StreamJobs)
	if len(msgs) != 2 || msgs[1].Header.Get(messages.HeaderForce) != "true" {
		t.Errorf("forced replay: %d jobs, force header %q", len(msgs), msgs[len(msgs)-1].Header.Get(messages.HeaderForce))
	}

	if _, err := r.Replay(ctx, 999, false); !errors.Is(err, ErrNoDeadLetter) || !strings.Contains(err.Error(), "999") {
		t.Errorf("unknown sequence: %v", err)
	}
	if _, err := r.Replay(ctx, 0, false); !errors.Is(err, ErrNoDeadLetter) {
		t.Errorf("sequence 0: %v", err)
	}
}

func TestReplayFetchedExport(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	r := newRequester(t, b.JS, Config{})
	doc := []byte("<enterprise/>")
	if _, err := b.Stores.Exports.PutBytes(ctx, tenantA+"/job-1.xml", doc); err != nil {
		t.Fatal(err)
	}
	fe := messages.FetchedExport{
		JobID: "job-1", ExportID: "job-1", Tenant: tenantA, Application: app, Object: tenantA + "/job-1.xml",
		Size: int64(len(doc)), SHA256: strings.Repeat("ab", 32), FetchedAt: time.Now(),
	}
	failed, err := messages.Encode(fe)
	if err != nil {
		t.Fatal(err)
	}
	// The original fetched export is in EXPORTS: a replay with the same key
	// would collapse into it.
	if _, err := b.JS.PublishMsg(ctx, failed); err != nil {
		t.Fatal(err)
	}
	seq := deadLetter(t, b.JS, "publish", tenantA, failed, failure.Permanentf("deletion_threshold", "would delete 90%% of the records"))

	got, err := r.Replay(ctx, seq, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != "fetched export" || got.Duplicate || !got.Force {
		t.Errorf("replayed %+v", got)
	}
	msgs := streamMsgs(t, b.JS, bus.StreamExports)
	if len(msgs) != 2 {
		t.Fatalf("%d fetched exports, want the original and the replay", len(msgs))
	}
	m := msgs[1]
	if m.Subject != "exports.fetched."+tenantA || m.Header.Get(messages.HeaderMsgID) != ReplayID(seq) {
		t.Errorf("replay: subject %s headers %v", m.Subject, m.Header)
	}
	back, err := messages.Decode[messages.FetchedExport](&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
	if err != nil || back.Object != fe.Object || back.SHA256 != fe.SHA256 || !back.Force {
		t.Errorf("replayed fetched export %+v, %v", back, err)
	}

	// Once the stored export is gone, the replay is refused with a reason.
	if err := b.Stores.Exports.Delete(ctx, fe.Object); err != nil {
		t.Fatal(err)
	}
	fe.JobID = "job-2"
	failed2, err := messages.Encode(fe)
	if err != nil {
		t.Fatal(err)
	}
	seq2 := deadLetter(t, b.JS, "publish", tenantA, failed2, failure.Permanentf("deletion_threshold", "held"))
	if _, err := r.Replay(ctx, seq2, false); !errors.Is(err, ErrNotReplayable) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("replay of an expired export: %v", err)
	}
}

func TestReplayRefusesOtherMessages(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	r := newRequester(t, b.JS, Config{})
	// A dead letter of a message that is no job nor fetched export.
	other := &nats.Msg{Subject: "lms." + tenantA + ".person.created", Data: []byte(`{}`)}
	seq := deadLetter(t, b.JS, "fanout", tenantA, other, failure.Permanentf("x", "y"))
	if _, err := r.Replay(ctx, seq, false); !errors.Is(err, ErrNotReplayable) || !strings.Contains(err.Error(), other.Subject) {
		t.Errorf("event dead letter: %v", err)
	}
	// A job dead letter whose body never decoded (an unknown version).
	bad := &nats.Msg{Subject: "jobs.export." + tenantA, Header: nats.Header{"ce-type": {"no.skolebuss.internal.job.v9"}}, Data: []byte(`{}`)}
	seq = deadLetter(t, b.JS, "fetch", tenantA, bad, failure.Permanentf("unknown_message_version", "v9"))
	if _, err := r.Replay(ctx, seq, false); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("undecodable job: %v", err)
	}
	// Not a dead letter at all (something else stored on dlq.>).
	ack, err := b.JS.Publish(ctx, "dlq.fetch."+tenantA, []byte("junk"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Replay(ctx, ack.Sequence, false); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("junk: %v", err)
	}
	if n := len(streamMsgs(t, b.JS, bus.StreamJobs)); n != 0 {
		t.Errorf("%d jobs published by refused replays", n)
	}
}
