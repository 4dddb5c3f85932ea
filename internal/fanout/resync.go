package fanout

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// The publisher's snapshot object of a tenant in the object store
// "snapshots" is named by the tenant, and its metadata names the export it
// came from and that export's object in the object store "exports" (the
// publisher's SnapshotName, MetaExportID and MetaExportObject; a test holds
// them equal). The exports store has no age limit and keeps the object as
// long as a snapshot names it.
const (
	metaExportID     = "skolebuss-export-id"
	metaExportObject = "skolebuss-export-object"
)

// objectReadTimeout bounds the whole read of an export object, as the
// publisher's does: without a deadline of its own the read would end at the
// JetStream context's default timeout, 5 s.
const objectReadTimeout = time.Hour

// source is the export a tenant's current state comes from.
type source struct {
	exportID, object string
	// completed is the LMS stream sequence of the export's export.completed.
	completed uint64
}

// errNotSettled means the publisher has published an export.completed of
// the tenant newer than its snapshot, and has not stored that snapshot yet.
var errNotSettled = errors.New("the tenant's snapshot is not yet the one of its last export.completed")

// current finds the export tenant's state comes from: the snapshot's export
// and the LMS sequence of that export's export.completed. While the
// publisher is between publishing an export.completed and storing its
// snapshot it tries again shortly, for up to Config.Retry.
func (f *Fanout) current(ctx context.Context, tenant string) (source, error) {
	deadline := time.Now().Add(f.cfg.Retry)
	for {
		src, err := f.currentOnce(ctx, tenant)
		if !errors.Is(err, errNotSettled) || time.Now().After(deadline) {
			return src, err
		}
		sleep(ctx, 50*time.Millisecond)
		if ctx.Err() != nil {
			return source{}, ctx.Err()
		}
	}
}

func (f *Fanout) currentOnce(ctx context.Context, tenant string) (source, error) {
	lms, err := f.deps.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		return source{}, fmt.Errorf("the LMS stream: %w", err)
	}
	// The stream's end before the snapshot is read: if the stream no longer
	// holds the snapshot's export.completed (aged out), the tenant's later
	// exports are all after it.
	info, err := lms.Info(ctx)
	if err != nil {
		return source{}, fmt.Errorf("the LMS stream: %w", err)
	}
	before := info.State.LastSeq
	si, err := f.deps.Snapshots.GetInfo(ctx, tenant)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return source{}, fmt.Errorf("%w: tenant %s", ErrNoState, tenant)
	}
	if err != nil {
		return source{}, fmt.Errorf("read the snapshot of %s: %w", tenant, err)
	}
	src := source{exportID: si.Metadata[metaExportID], object: si.Metadata[metaExportObject]}
	if src.exportID == "" || src.object == "" {
		return source{}, fmt.Errorf("the snapshot of %s names no export object", tenant)
	}
	subj, err := messages.BoundarySubject(tenant, messages.PhaseCompleted)
	if err != nil {
		return source{}, err
	}
	last, err := lms.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		src.completed = before
		return src, nil
	}
	if err != nil {
		return source{}, fmt.Errorf("read the last export.completed of %s: %w", tenant, err)
	}
	b, err := messages.Decode[messages.Boundary](&nats.Msg{Subject: last.Subject, Header: last.Header, Data: last.Data})
	if err != nil {
		return source{}, err
	}
	if b.ExportID != src.exportID {
		return source{}, fmt.Errorf("%w (snapshot %s, export.completed %s)", errNotSettled, src.exportID, b.ExportID)
	}
	src.completed = last.Sequence
	return src, nil
}

// resync publishes on vendor v's stream the whole current state of tenant,
// as created events between export.started and export.completed that carry
// resync: true, then stores v's state of the tenant as at that export, so
// that the exports after it are delivered on top and the ones before are
// skipped. The ids are a hash of vendor, tenant, resync id, export and
// record key: a redo of the same resync of the same export stores nothing
// twice within the vendor stream's duplicate window.
func (f *Fanout) resync(ctx context.Context, v Vendor, tenant, id string) error {
	src, err := f.current(ctx, tenant)
	if err != nil {
		return err
	}
	st, err := f.project(ctx, v, tenant, src)
	if err != nil {
		return err
	}
	if err := f.publishResync(ctx, v, tenant, id, st); err != nil {
		return err
	}
	canon := uint64(st.canon)
	next := state{LastSeq: src.completed, ExportID: src.exportID, Checksum: uint64(st.sum), Totals: map[pifu.Entity]int{},
		Canonical: &canon}
	for i, e := range pifu.Entities {
		next.Totals[e] = st.n[i]
	}
	if st.index != nil {
		if next.Index, err = st.index.MarshalBinary(); err != nil {
			return err
		}
	}
	return storeState(ctx, f.deps.Store, v.Name, tenant, next)
}

// resyncState is a tenant's state cut to a vendor's profile: the records'
// keys and objects per entity, in the export's order, and their checksum.
type resyncState struct {
	src  source
	time time.Time // when the export was stored: the events' ce-time
	recs [snapshot.NumEntities][]byte
	n    [snapshot.NumEntities]int
	sum  snapshot.Checksum
	// canon is the checksum of the export's whole canonical state (the
	// snapshot's).
	canon snapshot.Checksum
	index *projection.Index // for a profile without guardians
	// findings count the export's memberships that are not whole, as the
	// publisher's boundaries do (messages.Boundary.Findings); nil if none.
	findings map[string]int
}

// countFindings counts one membership's marks as the publisher's diff does:
// one missing its group or its person is one dangling membership.
func (st *resyncState) countFindings(m *pifu.Membership) {
	dangling := false
	for _, mark := range m.Incomplete {
		switch mark {
		case pifu.IncompleteGroupMember:
			st.finding(messages.FindingGroupMember)
		case pifu.IncompleteGroup, pifu.IncompletePerson:
			dangling = true
		}
	}
	if dangling {
		st.finding(messages.FindingDanglingMembership)
	}
}

func (st *resyncState) finding(kind string) {
	if st.findings == nil {
		st.findings = map[string]int{}
	}
	st.findings[kind]++
}

// project reads the export src and cuts each record to v's profile, the
// first of records with the same key kept (as the publisher's snapshot
// does). For a profile without guardians it reads the export twice: first
// for the guardian index of the export itself.
func (f *Fanout) project(ctx context.Context, v Vendor, tenant string, src source) (*resyncState, error) {
	st := &resyncState{src: src}
	var rel projection.Relations
	if !v.Profile.Has(projection.Guardians) {
		ix := projection.NewIndex()
		if _, err := f.readExport(ctx, tenant, src, func(rec pifu.Record, _ int, _ uint64) error {
			ix.Add(rec)
			return nil
		}); err != nil {
			return nil, err
		}
		st.index = ix.Build()
		rel = st.index
	}
	p, err := projection.New(v.Profile, rel)
	if err != nil {
		return nil, err
	}
	h := snapshot.NewHasher()
	st.time, err = f.readExport(ctx, tenant, src, func(rec pifu.Record, i int, kh uint64) error {
		if rec.Membership != nil {
			st.countFindings(rec.Membership)
		}
		c, _, _ := h.Content(rec)
		st.canon.Add(kh, c)
		out, ok := p.Record(rec)
		if !ok {
			return nil
		}
		content, obj, _ := h.Content(out)
		st.sum.Add(kh, content)
		st.n[i]++
		key := rec.Key()
		b := binary.AppendUvarint(st.recs[i], uint64(len(key)))
		b = append(b, key...)
		b = binary.AppendUvarint(b, uint64(len(obj)))
		st.recs[i] = append(b, obj...)
		return nil
	})
	return st, err
}

// readExport calls fn with each record of the export object src, the first
// of records with the same key only, each membership marked with what it
// lacks in the document (snapshot.Marked), with its entity's index and key
// hash.
// It returns when the object was stored.
func (f *Fanout) readExport(ctx context.Context, tenant string, src source, fn func(pifu.Record, int, uint64) error) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, objectReadTimeout)
	defer cancel()
	obj, err := f.deps.Exports.Get(ctx, src.object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		// Replaced by a newer snapshot's export since it was looked up.
		return time.Time{}, fmt.Errorf("export object %q of %s is gone (a newer export replaced it): %w", src.object, tenant, err)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("open export object %q of %s: %w", src.object, tenant, err)
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil {
		return time.Time{}, err
	}
	h := snapshot.NewHasher()
	seen := map[uint64]struct{}{}
	// Each membership marked with what it lacks in the document, as the
	// publisher's diff marks it: part of its content.
	dec := snapshot.Marked(pifu.NewDecoder(obj))
	for {
		rec, err := dec.Next()
		if err == io.EOF {
			return info.ModTime.UTC(), nil
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("read export object %q of %s: %w", src.object, tenant, err)
		}
		e := rec.Entity()
		i, ok := snapshot.EntityIndex(e)
		if !ok {
			return time.Time{}, fmt.Errorf("export object %q of %s: record at line %d: unknown entity %q", src.object, tenant, rec.Line, e)
		}
		kh := h.Key(e, rec.Key())
		if _, dup := seen[kh]; dup {
			continue
		}
		seen[kh] = struct{}{}
		if err := fn(rec, i, kh); err != nil {
			return time.Time{}, err
		}
	}
}

// publishResync publishes st on v's stream: export.started, the records as
// created events (orgs, groups, persons, memberships: every reference
// before its use), export.completed; and waits for every acknowledgement.
func (f *Fanout) publishResync(ctx context.Context, v Vendor, tenant, id string, st *resyncState) error {
	var mu sync.Mutex
	var first error
	js, err := jetstream.New(f.deps.Conn, jetstream.WithPublishAsyncMaxPending(f.cfg.Window),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = err
			}
		}))
	if err != nil {
		return err
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	send := func(m *nats.Msg) error {
		if err := failed(); err != nil {
			return err
		}
		_, err := bus.PublishAsync(ctx, js, m)
		return err
	}
	exportID := st.src.exportID
	counts := map[pifu.Entity]messages.Counts{}
	for i, e := range pifu.Entities {
		counts[e] = messages.Counts{Created: st.n[i], Total: st.n[i]}
	}
	boundary := func(p messages.Phase, checksum string) error {
		m, err := messages.Encode(messages.Boundary{ID: ResyncEventID(v.Name, tenant, id, exportID, "export", string(p)),
			Tenant: tenant, ExportID: exportID, Phase: p, Time: st.time, Counts: counts, Checksum: checksum,
			Findings: st.findings, Resync: true})
		if err != nil {
			return err
		}
		if m.Subject, err = messages.VendorBoundarySubject(v.Name, tenant, p); err != nil {
			return err
		}
		return send(m)
	}
	if err := boundary(messages.PhaseStarted, ""); err != nil {
		return err
	}
	for i, e := range pifu.Entities {
		subj, err := messages.VendorEventSubject(v.Name, tenant, e, messages.OpCreated)
		if err != nil {
			return err
		}
		for b := st.recs[i]; len(b) > 0; {
			var key, obj []byte
			key, b = field(b)
			obj, b = field(b)
			k := string(key)
			m, err := messages.Encode(messages.Event{ID: ResyncEventID(v.Name, tenant, id, exportID, string(e), k),
				Tenant: tenant, ExportID: exportID, Entity: e, Op: messages.OpCreated, Key: k, Time: st.time, Object: obj})
			if err != nil {
				return err
			}
			m.Subject = subj
			if err := send(m); err != nil {
				return err
			}
		}
	}
	if err := boundary(messages.PhaseCompleted, messages.FormatChecksum(st.sum)); err != nil {
		return err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.cfg.AckWait):
		return errors.New("the vendor's stream did not acknowledge the resync in time")
	}
	return failed()
}

// field splits one length-prefixed field off b.
func field(b []byte) (f, rest []byte) {
	n, k := binary.Uvarint(b)
	b = b[k:]
	return b[:n], b[n:]
}

// ResyncEventID is the id (ce-id and Nats-Msg-Id) of one event of a resync
// of tenant to vendor: the first 16 bytes of SHA-256 of vendor, tenant,
// resync id, export id, entity and key (for a boundary "export" and its
// phase), in hex. A redo of the same resync of the same export gives the
// same ids; another resync, or the same resync of another export, others.
func ResyncEventID(vendor, tenant, resyncID, exportID, entity, key string) string {
	sum := sha256.Sum256([]byte("resync\x00" + vendor + "\x00" + tenant + "\x00" + resyncID + "\x00" + exportID + "\x00" +
		entity + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}
