package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// window is the LMS stream's duplicate window in these tests: a redo after
// it is a redo the stream's deduplication no longer covers, as a replay of
// a dead letter the next day is with the default hour (a test cannot wait
// a day; what matters is that the window has passed).
const window = time.Second

// newWindowEnv is newEnv with the LMS stream's duplicate window set to
// window.
func newWindowEnv(t *testing.T, preset string) *env {
	t.Helper()
	s := bustest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: s.ClientURL(), Provision: bus.ProvisionConfig{DuplicateWindow: window}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	lms, err := b.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	if d := lms.CachedInfo().Config.Duplicates; d != window {
		t.Fatalf("the LMS stream's duplicate window is %s, want %s", d, window)
	}
	return newEnvOn(t, b, preset, true)
}

// afterTheWindow returns once the LMS stream's duplicate window has passed
// for every message stored so far: a probe published now on a stream with
// the same window is stored again, not dropped as a duplicate, only then.
func afterTheWindow(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.bus.JS.CreateOrUpdateStream(e.ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"},
		Storage: jetstream.MemoryStorage, Duplicates: window}); err != nil {
		t.Fatal(err)
	}
	probe := &nats.Msg{Subject: "probe.window", Header: nats.Header{messages.HeaderMsgID: []string{nuid.Next()}}}
	if ack, err := e.bus.JS.PublishMsg(e.ctx, probe); err != nil || ack.Duplicate {
		t.Fatalf("probe: %+v, %v", ack, err)
	}
	start := time.Now()
	waitfor.Condition(t, 10*window, func() error {
		ack, err := e.bus.JS.PublishMsg(e.ctx, probe)
		if err != nil {
			return err
		}
		if ack.Duplicate {
			return fmt.Errorf("the duplicate window has not passed after %s", time.Since(start))
		}
		return nil
	})
}

// killMidway runs the publisher on fe and cancels it once the LMS stream
// has taken at least share of the export's total messages (from the
// sequence from on), as a process killed there stops: what it sent is
// stored (publishes in flight may still arrive), nothing more follows.
func killMidway(t *testing.T, e *env, fe messages.FetchedExport, from uint64, total int, share float64) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.pub.Process(ctx, fe)
		done <- err
	}()
	want := from + uint64(share*float64(total))
	deadline := time.Now().Add(30 * time.Second)
	for lastSeq(t, e.bus.JS) < want {
		select {
		case err := <-done:
			t.Fatalf("the export ended (%v) before the kill, at %d of %d messages: the test proves nothing",
				err, lastSeq(t, e.bus.JS)-from+1, total)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publisher stored %d of %d messages in 30 s", lastSeq(t, e.bus.JS)-from+1, total)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the publisher killed midway returned %v", err)
	}
}

// storedOnce checks the LMS stream from sequence from on: every message's
// id once, export.started and export.completed of exportID once each, and
// changes change events of it; and that the vendor's copy is doc's records.
func storedOnce(t *testing.T, e *env, from uint64, exportID string, changes int, doc []byte) {
	t.Helper()
	ids := map[string]int{}
	phases := map[messages.Phase]int{}
	events := 0
	for _, m := range readLMS(t, e.bus.JS, from) {
		id := m.msg.Header.Get(messages.HeaderMsgID)
		if ids[id]++; ids[id] == 2 {
			t.Errorf("message %s (%s) stored twice", id, m.msg.Subject)
		}
		if m.subject.IsBoundary() {
			b, err := messages.Decode[messages.Boundary](m.msg)
			if err != nil {
				t.Fatal(err)
			}
			if b.ExportID == exportID {
				phases[b.Phase]++
			}
			continue
		}
		ev, err := messages.Decode[messages.Event](m.msg)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ExportID == exportID {
			events++
		}
	}
	if phases[messages.PhaseStarted] != 1 || phases[messages.PhaseCompleted] != 1 {
		t.Errorf("export %s: export.started stored %d times, export.completed %d times; want once each",
			exportID, phases[messages.PhaseStarted], phases[messages.PhaseCompleted])
	}
	if events != changes {
		t.Errorf("export %s: %d change events stored, want %d", exportID, events, changes)
	}
	sameCopy(t, e.vendor.Copy(tenant), truth(t, doc))
}

// firstWindowExport is a window test's start: its environment with a
// municipality of preset, the municipality's first export fetched and its
// document, the export's record count, and the LMS stream's sequence its
// messages will start at.
func firstWindowExport(t *testing.T, preset string) (e *env, fe messages.FetchedExport, doc []byte, n int, from uint64) {
	t.Helper()
	e = newWindowEnv(t, preset)
	fe, doc = e.export(0)
	return e, fe, doc, records(t, doc), lastSeq(t, e.bus.JS) + 1
}

func records(t *testing.T, doc []byte) int {
	n := 0
	for _, recs := range truth(t, doc) {
		n += len(recs)
	}
	return n
}

// A publisher killed midway through a medium municipality's first export
// and redone after the duplicate window stores every event once, and the
// vendor's copy is the export; the operator's replay of the export a
// "day" later (after the window again) stores nothing.
func TestKilledMidwayAndRedoneAfterTheWindowStoresEveryEventOnce(t *testing.T) {
	e, fe, doc, n, from := firstWindowExport(t, "medium")
	killMidway(t, e, fe, from, n+2, 0.3)

	afterTheWindow(t, e)
	stored := lastSeq(t, e.bus.JS) - from + 1
	if stored >= uint64(n+2) {
		t.Fatalf("the whole export was stored before the kill (%d messages): the test proves nothing", stored)
	}
	out := e.process(fe)
	if out.Events != n || out.Duplicates != int(stored)-1 {
		t.Errorf("redo: %d events, %d of them stored before; want %d, %d", out.Events, out.Duplicates, n, stored-1)
	}
	storedOnce(t, e, from, fe.ExportID, n, doc)
	t.Logf("killed at %d of %d messages", stored, n+2)

	afterTheWindow(t, e)
	end := lastSeq(t, e.bus.JS)
	out, err := e.pub.Process(e.ctx, fe)
	if err != nil || !out.AlreadyApplied {
		t.Fatalf("the replay a day later: %+v, %v; want it found applied", out, err)
	}
	if n := lastSeq(t, e.bus.JS); n != end {
		t.Errorf("the replay a day later stored %d messages", n-end)
	}
}

// limitStream makes the stream name refuse new messages once it holds
// extra more than now, and returns what undoes it.
func limitStream(t *testing.T, e *env, name string, extra int64) (undo func()) {
	t.Helper()
	s, err := e.bus.JS.Stream(e.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	orig := s.CachedInfo().Config
	limited := orig
	limited.MaxMsgs, limited.Discard = int64(s.CachedInfo().State.Msgs)+extra, jetstream.DiscardNew
	if _, err := e.bus.JS.UpdateStream(e.ctx, limited); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := e.bus.JS.UpdateStream(e.ctx, orig); err != nil {
			t.Fatal(err)
		}
	}
}

// refuseMidway has the publisher process fe (n records, its messages from
// sequence from on) once on an LMS stream that refuses the second half of
// it, wants a transient error, and returns how many of its messages were
// stored (at least atLeast, and not all the changes).
func refuseMidway(t *testing.T, e *env, fe messages.FetchedExport, from uint64, n int, atLeast uint64) uint64 {
	t.Helper()
	undo := limitStream(t, e, bus.StreamLMS, int64(n/2))
	if _, err := e.pub.Process(e.ctx, fe); err == nil || failure.IsPermanent(err) {
		t.Fatalf("a publish refused midway: %v, want a transient error", err)
	}
	undo()
	return storedMidway(t, e, from, n, atLeast, "the refusal")
}

// storedMidway is how many messages the LMS stream holds from sequence from
// on, failing the test unless it is at least atLeast and fewer than the n
// changes of the export stored up to what (said in the failure).
func storedMidway(t *testing.T, e *env, from uint64, n int, atLeast uint64, what string) uint64 {
	t.Helper()
	stored := lastSeq(t, e.bus.JS) - from + 1
	if stored < atLeast || stored >= uint64(n) {
		t.Fatalf("%d of %d messages stored before %s: not midway", stored, n+2, what)
	}
	return stored
}

// A change lost midway with later ones stored (the gap a timed-out
// asynchronous publish can leave) is sent by the redo after the window, and
// nothing else is sent again: the redo finds what the stream holds by id,
// not by how far it got.
func TestRedoAfterTheWindowFillsAGap(t *testing.T) {
	e, fe, doc, n, from := firstWindowExport(t, "small")
	stored := refuseMidway(t, e, fe, from, n, 4)
	lms, err := e.bus.JS.Stream(e.ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	if err := lms.DeleteMsg(e.ctx, from+stored/2); err != nil {
		t.Fatal(err)
	}

	afterTheWindow(t, e)
	out := e.process(fe)
	if out.Events != n || out.Duplicates != int(stored)-2 {
		t.Errorf("redo: %d events, %d of them stored before; want %d, %d", out.Events, out.Duplicates, n, stored-2)
	}
	storedOnce(t, e, from, fe.ExportID, n, doc)
}

// A publisher that stored export.completed but not the snapshot (here the
// snapshots store refuses it) is redone after the window: it sends nothing
// again and stores the snapshot.
func TestRedoAfterTheCompletedStoresOnlyTheSnapshot(t *testing.T) {
	e := newWindowEnv(t, "small")
	fe0, _ := e.export(0)
	e.process(fe0)
	fe1, doc1 := e.export(1)
	from := lastSeq(t, e.bus.JS) + 1
	undo := limitStream(t, e, "OBJ_"+bus.ObjectSnapshots, 0)
	if _, err := e.pub.Process(e.ctx, fe1); err == nil {
		t.Fatal("the snapshot was stored in a store that refuses it")
	}
	undo()
	end := lastSeq(t, e.bus.JS)
	_, completed, events := changes(t, readLMS(t, e.bus.JS, from), fe1.ExportID)
	if completed.ID == "" || len(events) == 0 {
		t.Fatalf("export.completed %q and %d changes stored: the first attempt did not get that far", completed.ID, len(events))
	}
	if st, err := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant); err != nil || st.Snapshot.ExportID() != fe0.ExportID {
		t.Fatalf("after the refused snapshot the tenant's state is %+v (%v), want export %s's", st, err, fe0.ExportID)
	}

	afterTheWindow(t, e)
	out := e.process(fe1)
	if out.Events != len(events) || out.Duplicates != len(events) || out.Checksum != completed.Checksum {
		t.Errorf("redo: %d events, %d stored before, checksum %s; want %d, %d, %s",
			out.Events, out.Duplicates, out.Checksum, len(events), len(events), completed.Checksum)
	}
	if n := lastSeq(t, e.bus.JS); n != end {
		t.Errorf("the redo stored %d messages", n-end)
	}
	if st, err := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant); err != nil || st.Snapshot.ExportID() != fe1.ExportID {
		t.Fatalf("after the redo the tenant's state is %+v (%v), want export %s's", st, err, fe1.ExportID)
	}
	storedOnce(t, e, from, fe1.ExportID, len(events), doc1)
}

// A redo that finds changes of its export in the stream that it does not
// compute (the stream and the snapshot disagree) stops before
// export.completed, permanently, and says so.
func TestRedoFindingChangesItDoesNotComputeIsRefused(t *testing.T) {
	e, fe, _, n, from := firstWindowExport(t, "tiny")
	refuseMidway(t, e, fe, from, n, 2)
	// A change of the export no run of it computes, stored last.
	evs := changesOf(t, e, from, fe.ExportID)
	ev := evs[0]
	ev.ID = "00112233445566778899aabbccddeeff"
	enc, err := messages.NewEventEncoder(tenant, fe.ExportID, fe.FetchedAt, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := enc.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.bus.JS.PublishMsg(e.ctx, m); err != nil {
		t.Fatal(err)
	}
	end := lastSeq(t, e.bus.JS)

	_, err = e.pub.Process(e.ctx, fe)
	if !failure.HasReason(err, failure.ReasonRedoMismatch) || !failure.IsPermanent(err) {
		t.Fatalf("redo over a foreign change: %v, want a permanent %s", err, failure.ReasonRedoMismatch)
	}
	for _, m := range readLMS(t, e.bus.JS, end+1) {
		if m.subject.IsBoundary() {
			t.Errorf("the refused redo stored %s", m.msg.Subject)
		}
	}
	if st, _ := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant); st.Snapshot != nil {
		t.Errorf("the refused redo stored the snapshot of export %s", st.Snapshot.ExportID())
	}
}

func changesOf(t *testing.T, e *env, from uint64, exportID string) []messages.Event {
	t.Helper()
	var out []messages.Event
	for _, m := range readLMS(t, e.bus.JS, from) {
		if m.subject.IsBoundary() {
			continue
		}
		ev, err := messages.Decode[messages.Event](m.msg)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ExportID == exportID {
			out = append(out, ev)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no change of export %s stored", exportID)
	}
	return out
}

// The export fails midway at every attempt (the LMS stream refuses the rest)
// until its attempts run out and it is a dead letter; the operator replays
// the dead letter "the next day" (after the duplicate window) with the
// stage, the dead letter and the replay all the real ones: every event is
// stored once and the vendor's copy is the export.
func TestDeadLetterReplayedAfterTheWindowStoresEveryEventOnce(t *testing.T) {
	e, fe, doc, n, from := firstWindowExport(t, "small")
	undo := limitStream(t, e, bus.StreamLMS, int64(n/2))
	wcfg := publisher.WorkerConfig()
	wcfg.MaxAttempts, wcfg.Backoff = 2, []time.Duration{100 * time.Millisecond}
	e.stageWith(nil, wcfg)
	e.send(e.ctx, fe)
	dl := waitDeadLetter(t, e)
	if dl.Stage != publisher.Stage || dl.Class != "transient" || dl.Attempts != 2 {
		t.Fatalf("dead letter %+v, want the publisher's after 2 transient attempts", dl)
	}
	undo()
	storedMidway(t, e, from, n, 2, "the dead letter")

	afterTheWindow(t, e)
	dlq, err := e.bus.JS.Stream(e.ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	last, err := dlq.GetLastMsgForSubject(e.ctx, "dlq.>")
	if err != nil {
		t.Fatal(err)
	}
	req, err := requester.New(e.bus.JS, requester.Config{}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Replay(e.ctx, last.Sequence, false); err != nil {
		t.Fatal(err)
	}
	e.waitVendor(fe.ExportID)
	storedOnce(t, e, from, fe.ExportID, n, doc)
}
