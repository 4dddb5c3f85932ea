package publisher_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

func diffConfig(t testing.TB) diff.Config { return diff.Config{SpoolDir: t.TempDir()} }

// changes splits one export's messages: its started and completed
// boundaries and the change events between them, which must be contiguous.
func changes(t *testing.T, msgs []lmsMsg, exportID string) (started, completed messages.Boundary, events []messages.Event) {
	t.Helper()
	phase := 0
	for _, m := range msgs {
		if m.subject.IsBoundary() {
			b, err := messages.Decode[messages.Boundary](m.msg)
			if err != nil {
				t.Fatal(err)
			}
			if b.ExportID != exportID {
				continue
			}
			switch {
			case b.Phase == messages.PhaseStarted && phase == 0:
				started, phase = b, 1
			case b.Phase == messages.PhaseCompleted && phase == 1:
				completed, phase = b, 2
			default:
				t.Fatalf("export %s: unexpected export.%s at sequence %d", exportID, b.Phase, m.seq)
			}
			continue
		}
		ev, err := messages.Decode[messages.Event](m.msg)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ExportID != exportID {
			continue
		}
		if phase != 1 {
			t.Fatalf("export %s: change at sequence %d outside started/completed", exportID, m.seq)
		}
		events = append(events, ev)
	}
	if phase != 2 {
		t.Fatalf("export %s: boundaries incomplete (phase %d)", exportID, phase)
	}
	return started, completed, events
}

func TestFirstExportCreatesEveryRecordOnce(t *testing.T) {
	e := newEnv(t, "small")
	fe, doc := e.export(0)
	out := e.process(fe)

	stats := e.muni.Stats(0)
	want := map[pifu.Entity]int{pifu.EntityOrg: stats.Orgs, pifu.EntityGroup: stats.Groups,
		pifu.EntityPerson: stats.Persons, pifu.EntityMembership: stats.Memberships}
	_, completed, events := changes(t, readLMS(t, e.bus.JS, 1), fe.ExportID)
	got := map[pifu.Entity]int{}
	ids := map[string]bool{}
	for _, ev := range events {
		if ev.Op != messages.OpCreated {
			t.Fatalf("a first export published %s %s %s", ev.Entity, ev.Op, ev.Key)
		}
		if ids[ev.ID] {
			t.Fatalf("event id %s twice", ev.ID)
		}
		ids[ev.ID] = true
		got[ev.Entity]++
	}
	for en, n := range want {
		if got[en] != n || completed.Counts[en].Created != n || completed.Counts[en].Total != n {
			t.Errorf("%s: %d created events, completed says %+v; the export has %d", en, got[en], completed.Counts[en], n)
		}
	}
	if out.Events != len(events) || out.Duplicates != 0 {
		t.Errorf("outcome %d events, %d duplicates; the stream has %d", out.Events, out.Duplicates, len(events))
	}
	sameCopy(t, e.vendor.Copy(tenant), truth(t, doc))
	if completed.Checksum != out.Checksum || !strings.HasPrefix(out.Checksum, messages.ChecksumPrefix) {
		t.Errorf("checksum %q in completed, %q in the outcome", completed.Checksum, out.Checksum)
	}
	if c := messages.FormatChecksum(vendorcopy.Checksum(truth(t, doc))); c != out.Checksum {
		t.Errorf("checksum of the export %s, published %s", c, out.Checksum)
	}

	// The snapshot is the tenant's now: the same message again publishes nothing.
	before := lastSeq(t, e.bus.JS)
	again, err := e.pub.Process(e.ctx, fe)
	if err != nil || !again.AlreadyApplied {
		t.Fatalf("redelivered export: %+v, %v", again, err)
	}
	if after := lastSeq(t, e.bus.JS); after != before {
		t.Errorf("a redelivered export published %d messages", after-before)
	}
}

// rank is the place of an event's kind in the stated order: creations and
// updates of orgs, groups, persons, memberships, then deletions of
// memberships, persons, groups, orgs.
func rank(ev messages.Event) int {
	i := map[pifu.Entity]int{pifu.EntityOrg: 0, pifu.EntityGroup: 1, pifu.EntityPerson: 2, pifu.EntityMembership: 3}[ev.Entity]
	if ev.Op == messages.OpDeleted {
		return 7 - i
	}
	return i
}

func TestChangedGenerationPublishesExactlyTheChangesInOrder(t *testing.T) {
	e := newEnv(t, "small")
	fe0, doc0 := e.export(0)
	e.process(fe0)
	from := lastSeq(t, e.bus.JS) + 1
	fe1, doc1 := e.export(1)
	out := e.process(fe1)

	old, cur := truth(t, doc0), truth(t, doc1)
	_, completed, events := changes(t, readLMS(t, e.bus.JS, from), fe1.ExportID)
	seen := map[string]bool{}
	ops := map[messages.Op]int{}
	prevRank := 0
	for _, ev := range events {
		if r := rank(ev); r < prevRank {
			t.Fatalf("%s %s %s after an event of rank %d", ev.Entity, ev.Op, ev.Key, prevRank)
		} else {
			prevRank = r
		}
		k := string(ev.Entity) + "/" + ev.Key
		if seen[k] {
			t.Fatalf("%s changed twice", k)
		}
		seen[k] = true
		ops[ev.Op]++
		was, had := old[ev.Entity][ev.Key]
		now, has := cur[ev.Entity][ev.Key]
		switch ev.Op {
		case messages.OpCreated:
			if had || !has || !bytes.Equal(ev.Object, now) {
				t.Errorf("created %s: before %v, after %v, object matches %v", k, had, has, bytes.Equal(ev.Object, now))
			}
		case messages.OpDeleted:
			if !had || has || !bytes.Equal(ev.Object, was) {
				t.Errorf("deleted %s: before %v, after %v", k, had, has)
			}
		case messages.OpUpdated:
			if !had || !has || !bytes.Equal(ev.Object, now) || bytes.Equal(was, now) {
				t.Errorf("updated %s: before %v, after %v", k, had, has)
			}
			checkPrevious(t, k, was, now, ev.Previous)
		}
	}
	// Every difference between the two exports is one event.
	wantOps := map[messages.Op]int{}
	for _, en := range pifu.Entities {
		for k, now := range cur[en] {
			if was, had := old[en][k]; !had {
				wantOps[messages.OpCreated]++
			} else if !bytes.Equal(was, now) {
				wantOps[messages.OpUpdated]++
			}
		}
		for k := range old[en] {
			if _, has := cur[en][k]; !has {
				wantOps[messages.OpDeleted]++
			}
		}
	}
	for _, op := range messages.Ops {
		if ops[op] != wantOps[op] || wantOps[op] == 0 {
			t.Errorf("%s: %d events, the exports differ by %d", op, ops[op], wantOps[op])
		}
	}
	if completed.Checksum != out.Checksum {
		t.Errorf("completed checksum %s, outcome %s", completed.Checksum, out.Checksum)
	}
	sameCopy(t, e.vendor.Copy(tenant), cur)

	// Retention: the previous export is deleted, the current one kept.
	if _, err := e.bus.Stores.Exports.GetInfo(e.ctx, fe0.Object); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("previous export object still there: %v", err)
	}
	if _, err := e.bus.Stores.Exports.GetInfo(e.ctx, fe1.Object); err != nil {
		t.Errorf("current export object: %v", err)
	}
}

// checkPrevious: previous holds exactly the changed top-level fields, each
// with its old value (null when it was absent).
func checkPrevious(t *testing.T, k string, was, now, previous json.RawMessage) {
	t.Helper()
	var o, n, p map[string]json.RawMessage
	for _, x := range []struct {
		b json.RawMessage
		m *map[string]json.RawMessage
	}{{was, &o}, {now, &n}, {previous, &p}} {
		if err := json.Unmarshal(x.b, x.m); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	fields := map[string]bool{}
	for f := range o {
		fields[f] = true
	}
	for f := range n {
		fields[f] = true
	}
	for f := range fields {
		changed := !bytes.Equal(o[f], n[f])
		pv, in := p[f]
		switch {
		case changed && !in:
			t.Errorf("%s: field %s changed but is not in previous", k, f)
		case !changed && in:
			t.Errorf("%s: field %s did not change but is in previous", k, f)
		case changed && o[f] == nil && string(pv) != "null":
			t.Errorf("%s: field %s was absent, previous says %s", k, f, pv)
		case changed && o[f] != nil && !bytes.Equal(pv, o[f]):
			t.Errorf("%s: field %s was %s, previous says %s", k, f, o[f], pv)
		}
	}
}

func TestUnchangedExportPublishesNoChanges(t *testing.T) {
	e := newEnv(t, "small")
	fe0, doc := e.export(0)
	e.process(fe0)
	from := lastSeq(t, e.bus.JS) + 1
	fe := e.put("again", doc)
	out := e.process(fe)
	msgs := readLMS(t, e.bus.JS, from)
	if len(msgs) != 2 || !msgs[0].subject.IsBoundary() || !msgs[1].subject.IsBoundary() {
		t.Fatalf("an unchanged export published %d messages, want started and completed only", len(msgs))
	}
	_, completed, _ := changes(t, msgs, fe.ExportID)
	for en, c := range completed.Counts {
		if c.Created+c.Updated+c.Deleted != 0 || c.Unchanged != c.Total {
			t.Errorf("%s: %+v", en, c)
		}
	}
	if out.Events != 0 {
		t.Errorf("%d events", out.Events)
	}
	// The unchanged export's object is now the one the snapshot needs.
	if _, err := e.bus.Stores.Exports.GetInfo(e.ctx, fe0.Object); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("superseded export object still there: %v", err)
	}
	st, err := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant)
	if err != nil || st.Snapshot.ExportID() != fe.ExportID || st.ExportObject != fe.Object {
		t.Fatalf("state after the unchanged export: %+v, %v", st, err)
	}
}

func TestMalformedExportIsPermanentAndPublishesNothing(t *testing.T) {
	e := newEnv(t, "tiny")
	_, doc := e.export(0)
	bad := bytes.Replace(doc, []byte("</person>"), []byte("</persn>"), 1)
	fe := e.put("bad", bad)
	_, err := e.pub.Process(e.ctx, fe)
	if !failure.IsPermanent(err) || failure.ReasonOf(err) != "invalid_document" {
		t.Fatalf("err = %v (reason %s), want permanent invalid_document", err, failure.ReasonOf(err))
	}
	var se *pifu.SyntaxError
	if !errors.As(err, &se) || se.Line == 0 || !strings.Contains(err.Error(), "line") {
		t.Errorf("error without line and column: %v", err)
	}
	if n := lastSeq(t, e.bus.JS); n != 0 {
		t.Errorf("a malformed export published %d messages", n)
	}
	if _, err := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant); err != nil {
		t.Fatal(err)
	}
}

func TestExportWithWrongDigestIsRefused(t *testing.T) {
	e := newEnv(t, "tiny")
	fe, _ := e.export(0)
	fe.SHA256 = strings.Repeat("ab", 32)
	_, err := e.pub.Process(e.ctx, fe)
	if !failure.IsPermanent(err) || failure.ReasonOf(err) != "export_mismatch" {
		t.Fatalf("err = %v, want permanent export_mismatch", err)
	}
	fe.Object = "no-such-object"
	if _, err := e.pub.Process(e.ctx, fe); failure.ReasonOf(err) != "export_missing" {
		t.Fatalf("err = %v, want export_missing", err)
	}
}

// A publish that fails midway leaves the tenant's snapshot where it was: it
// becomes the new export's only after every event is stored. The redo
// publishes the rest, each event once, and the vendor's copy is the export.
func TestSnapshotIsTheTenantsOnlyAfterEveryEventIsStored(t *testing.T) {
	e := newEnv(t, "small")
	fe0, doc0 := e.export(0)
	e.process(fe0)
	fe1, doc1 := e.export(1)
	old, cur := truth(t, doc0), truth(t, doc1)
	changed := 0
	for _, en := range pifu.Entities {
		for k, now := range cur[en] {
			if was, had := old[en][k]; !had || !bytes.Equal(was, now) {
				changed++
			}
		}
		for k := range old[en] {
			if _, has := cur[en][k]; !has {
				changed++
			}
		}
	}
	if changed < 20 {
		t.Fatalf("generation 1 changes %d records: too few to fail midway", changed)
	}

	// The LMS stream takes export.started and half of the changes, then
	// refuses the rest.
	s, err := e.bus.JS.Stream(e.ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	orig := s.CachedInfo().Config
	from := lastSeq(t, e.bus.JS) + 1
	limited := orig
	limited.MaxMsgs, limited.Discard = int64(from)+int64(changed/2), jetstream.DiscardNew
	if _, err := e.bus.JS.UpdateStream(e.ctx, limited); err != nil {
		t.Fatal(err)
	}
	_, err = e.pub.Process(e.ctx, fe1)
	if err == nil || failure.IsPermanent(err) {
		t.Fatalf("a publish refused midway: %v, want a transient error", err)
	}
	stored := lastSeq(t, e.bus.JS) - from + 1
	if stored < 2 || stored >= uint64(changed)+2 {
		t.Fatalf("%d messages stored before the failure: not midway", stored)
	}
	st, err := publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant)
	if err != nil || st.Snapshot == nil || st.Snapshot.ExportID() != fe0.ExportID || st.ExportObject != fe0.Object {
		t.Fatalf("after a failed publish the tenant's state is %+v (%v), want export %s's", st, err, fe0.ExportID)
	}
	for _, m := range readLMS(t, e.bus.JS, from) {
		if m.subject.IsBoundary() {
			if b, _ := messages.Decode[messages.Boundary](m.msg); b.Phase == messages.PhaseCompleted {
				t.Fatal("export.completed stored for an export not wholly published")
			}
		}
	}

	// The redo after the stream takes messages again.
	if _, err := e.bus.JS.UpdateStream(e.ctx, orig); err != nil {
		t.Fatal(err)
	}
	out := e.process(fe1)
	if out.Events != changed || out.Duplicates != int(stored)-1 {
		t.Errorf("redo: %d events, %d duplicates; want %d events, %d of them stored before", out.Events, out.Duplicates, changed, stored-1)
	}
	st, err = publisher.LoadState(e.ctx, e.bus.Stores.Snapshots, tenant)
	if err != nil || st.Snapshot.ExportID() != fe1.ExportID {
		t.Fatalf("after the redo the tenant's state is %+v (%v)", st, err)
	}
	_, _, events := changes(t, readLMS(t, e.bus.JS, from), fe1.ExportID)
	ids := map[string]bool{}
	for _, ev := range events {
		if ids[ev.ID] {
			t.Errorf("event %s stored twice", ev.ID)
		}
		ids[ev.ID] = true
	}
	if len(events) != changed {
		t.Errorf("%d change events stored, the exports differ by %d", len(events), changed)
	}
	sameCopy(t, e.vendor.Copy(tenant), cur)
}
