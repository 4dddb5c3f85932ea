package fanout

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// export is the delivery of one canonical export to one vendor.
type export struct {
	f        *Fanout
	vendor   Vendor
	done     messages.Boundary // the canonical export.completed
	end      uint64            // its stream sequence
	st       state
	src      exportSource
	proj     *projection.Projector
	counts   map[pifu.Entity]messages.Counts
	sum      snapshot.Checksum
	totals   map[pifu.Entity]int
	newIndex *projection.Index
	// flips are the changes made for the persons whose visibility to a
	// profile without guardians changes with no event of their own.
	flips *flips
}

// tally is what an export changes of what a vendor holds: the changes it
// receives counted per entity and op, the records per entity gained (or
// lost), and what its checksum moves by. It depends on the vendor's
// profile and guardian index only, so vendors alike share it.
type tally struct {
	counts map[pifu.Entity]*messages.Counts
	sum    snapshot.Checksum
	totals map[pifu.Entity]int
	// canon is what the canonical state's checksum moves by: the same for
	// every vendor.
	canon snapshot.Checksum
}

func newTally() *tally {
	t := &tally{counts: map[pifu.Entity]*messages.Counts{}, totals: map[pifu.Entity]int{}}
	for _, e := range pifu.Entities {
		t.counts[e] = &messages.Counts{}
	}
	return t
}

// deliver delivers the export ending at the export.completed b (stream
// sequence end) to vendor v, unless the vendor already has it.
func (f *Fanout) deliver(ctx context.Context, v Vendor, b messages.Boundary, end uint64) error {
	st, err := loadState(ctx, f.deps.Store, v.Name, b.Tenant)
	if err != nil {
		return err
	}
	if st.LastSeq >= end || st.ExportID == b.ExportID {
		f.cache.delivered(b.Tenant, end, v.Name)
		return nil // delivered before the acknowledgement was lost
	}
	src, release, err := f.cache.get(ctx, f.deps.JS, v.Name, b, st.LastSeq, end)
	if err != nil {
		return err
	}
	delivered := false
	defer func() { release(delivered) }()
	x := &export{f: f, vendor: v, done: b, end: end, st: st, src: src}
	if err := x.relations(ctx); errors.Is(err, errVisibilityStale) {
		// The records of the persons whose visibility flips are gone with
		// the export's object: the vendor gets the tenant's current state.
		f.deps.Logger.Info("fan-out: the export's object is gone; the vendor gets a resync of the tenant instead",
			"vendor", v.Name, "tenant", b.Tenant, "export_id", b.ExportID)
		if err := f.resync(ctx, v, b.Tenant, "visibility-"+b.ExportID); err != nil {
			return err
		}
		delivered = true
		return nil
	} else if err != nil {
		return err
	}
	// Count first: export.started carries the vendor's counts.
	count := func() (*tally, error) {
		t := newTally()
		return t, x.each(ctx, func(ch *change) error { return x.count(t, ch) })
	}
	var t *tally
	key := tallyKey{profile: v.Profile}
	if !v.Profile.Has(projection.Guardians) {
		key.before = string(st.Index)
	}
	if d, ok := src.(*decoded); ok && d.whole(st.LastSeq) {
		t, err = d.tally(ctx, key, count)
	} else {
		t, err = count()
	}
	if err != nil {
		return err
	}
	// The canonical state after the export, from the one before it and
	// the change events read, is the export.completed's checksum, unless
	// change events were lost: then the vendor gets the tenant's state.
	canon, known := parseChecksum(b.Checksum)
	if known && st.Canonical != nil {
		if got := snapshot.Checksum(*st.Canonical) + t.canon; got != canon {
			if err := f.heal(ctx, v, b, got, canon); err != nil {
				return err
			}
			delivered = true
			return nil
		}
	}
	x.sum = snapshot.Checksum(st.Checksum) + t.sum
	x.counts, x.totals = map[pifu.Entity]messages.Counts{}, map[pifu.Entity]int{}
	for _, e := range pifu.Entities {
		x.totals[e] = st.Totals[e] + t.totals[e]
		c := *t.counts[e]
		c.Total = x.totals[e]
		c.Unchanged = c.Total - c.Created - c.Updated
		x.counts[e] = c
	}
	if err := x.publish(ctx, key); err != nil {
		return err
	}
	next := state{LastSeq: end, ExportID: b.ExportID, Checksum: uint64(x.sum), Totals: x.totals}
	if known {
		c := uint64(canon)
		next.Canonical = &c
	}
	if x.newIndex != nil {
		if next.Index, err = x.newIndex.MarshalBinary(); err != nil {
			return err
		}
	}
	if err := storeState(ctx, f.deps.Store, v.Name, b.Tenant, next); err != nil {
		return err
	}
	delivered = true
	return nil
}

// relations sets the projector up: for a profile without guardians, the
// index before the export (stored with the last one) and after it (carried
// over the export's changes; shared by the vendors with the same index
// before when the export is in memory).
func (x *export) relations(ctx context.Context) error {
	if x.vendor.Profile.Has(projection.Guardians) {
		p, err := projection.New(x.vendor.Profile, nil)
		x.proj = p
		return err
	}
	var before, after *projection.Index
	if d, ok := x.src.(*decoded); ok {
		var err error
		if before, after, err = d.index(ctx, x.st.Index, x.st.LastSeq); err != nil {
			return err
		}
	} else {
		before = projection.NewIndex().Build()
		if len(x.st.Index) > 0 {
			if err := before.UnmarshalBinary(x.st.Index); err != nil {
				return err
			}
		}
		after = before.Clone()
		if err := x.src.each(ctx, x.st.LastSeq, func(ch *change) error {
			after.Apply(ch.c)
			return nil
		}); err != nil {
			return err
		}
	}
	p, err := projection.New(x.vendor.Profile, after)
	if err != nil {
		return err
	}
	if err := p.SetRelations(before, after); err != nil {
		return err
	}
	x.proj, x.newIndex = p, after
	x.flips, err = x.sharedFlips(ctx, before, after)
	return err
}

// count counts one change into t as the vendor will receive it.
func (x *export) count(t *tally, ev *change) error {
	t.canon += ev.delta
	ch, err := x.proj.Change(ev.c)
	if err != nil || !ch.Sent() {
		return err
	}
	n := t.counts[ev.entity]
	k := snapshot.KeyHash(ev.entity, ev.key)
	switch ch.Op {
	case messages.OpCreated:
		n.Created++
		t.totals[ev.entity]++
		t.sum += snapshot.Checksum(snapshot.Mix(k, ch.Content))
	case messages.OpUpdated:
		n.Updated++
		t.sum += snapshot.Checksum(snapshot.Mix(k, ch.Content)) - snapshot.Checksum(snapshot.Mix(k, ch.Old))
	case messages.OpDeleted:
		n.Deleted++
		t.totals[ev.entity]--
		t.sum -= snapshot.Checksum(snapshot.Mix(k, ch.Old))
	}
	return nil
}

// publish publishes the vendor's export.started, its changes and its
// export.completed, and waits for every acknowledgement. From an export in
// memory, vendors alike that publish at the same time publish together
// (publishTogether).
func (x *export) publish(ctx context.Context, key tallyKey) error {
	if d, ok := x.src.(*decoded); ok && d.whole(x.st.LastSeq) {
		return d.publishWith(ctx, key, x)
	}
	o, err := x.open(ctx)
	if err != nil {
		return err
	}
	if err := x.each(ctx, func(ev *change) error {
		ch, err := x.proj.Change(ev.c)
		if err != nil || !ch.Sent() {
			return err
		}
		m, err := o.enc.encode(ev, ch)
		if err != nil {
			return err
		}
		return o.send(ctx, m)
	}); err != nil {
		return err
	}
	return o.close(ctx)
}

// outlet is one vendor's publishing of one export: a JetStream context of
// its own, whose asynchronous window and first failure are the vendor's
// alone.
type outlet struct {
	x     *export
	js    jetstream.JetStream
	enc   *vendorEncoder
	mu    sync.Mutex
	first error
}

// open makes the vendor's outlet and sends its export.started.
func (x *export) open(ctx context.Context) (*outlet, error) {
	o := &outlet{x: x, enc: newVendorEncoder(x.vendor.Name, x.done.Tenant, x.done.ExportID)}
	js, err := jetstream.New(x.f.deps.Conn, jetstream.WithPublishAsyncMaxPending(x.f.cfg.Window),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { o.fail(err) }))
	if err != nil {
		return nil, err
	}
	o.js = js
	t := x.done.Tenant
	started, err := x.src.started(ctx, x.st.LastSeq)
	if err != nil {
		return nil, err
	}
	if started.ID == "" {
		started = messages.Boundary{ID: messages.BoundaryID(t, x.done.ExportID, messages.PhaseStarted),
			Tenant: t, ExportID: x.done.ExportID, Phase: messages.PhaseStarted, Time: x.done.Time}
	}
	if err := x.sendBoundary(func(m *nats.Msg) error { return o.send(ctx, m) }, started, x.counts, ""); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *outlet) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first == nil {
		o.first = err
	}
}

func (o *outlet) failed() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first
}

// send publishes m asynchronously, unless an earlier message failed. It
// waits while the vendor's window is full, for AckWait at most: a stream
// that acknowledges nothing fails its vendor, not the vendors publishing
// together with it.
func (o *outlet) send(ctx context.Context, m *nats.Msg) error {
	if err := o.failed(); err != nil {
		return err
	}
	var stalled time.Time
	for {
		_, err := o.js.PublishMsgAsync(m)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case stalled.IsZero():
			stalled = time.Now()
		case time.Since(stalled) > o.x.f.cfg.AckWait:
			return errors.New("the vendor's stream did not acknowledge the export in time")
		}
	}
}

// close sends the vendor's export.completed and waits for every
// acknowledgement.
func (o *outlet) close(ctx context.Context) error {
	x := o.x
	if err := x.sendBoundary(func(m *nats.Msg) error { return o.send(ctx, m) }, x.done, x.counts,
		messages.FormatChecksum(x.sum)); err != nil {
		return err
	}
	select {
	case <-o.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(x.f.cfg.AckWait):
		return errors.New("the vendor's stream did not acknowledge the export in time")
	}
	return o.failed()
}

// sendBoundary sends the vendor's copy of the canonical boundary b.
func (x *export) sendBoundary(send func(*nats.Msg) error, b messages.Boundary, counts map[pifu.Entity]messages.Counts, checksum string) error {
	// What else the canonical boundary carries (what the upstream said of
	// its API, the findings of the export's check) passes to the vendor
	// unchanged.
	vb := b
	vb.ID, vb.Counts, vb.Checksum = VendorEventID(b.ID, x.vendor.Name), counts, checksum
	m, err := messages.Encode(vb)
	if err != nil {
		return err
	}
	if m.Subject, err = messages.VendorBoundarySubject(x.vendor.Name, b.Tenant, b.Phase); err != nil {
		return err
	}
	return send(m)
}
