package fanout

import (
	"context"
	"errors"
	"fmt"
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

// export is the delivery of one canonical export to one vendor.
type export struct {
	f        *Fanout
	vendor   Vendor
	done     messages.Boundary // the canonical export.completed
	end      uint64            // its stream sequence
	st       state
	started  messages.Boundary // the canonical export.started, if the stream still holds it
	proj     *projection.Projector
	counts   map[pifu.Entity]*messages.Counts
	sum      snapshot.Checksum
	totals   map[pifu.Entity]int
	newIndex *projection.Index
}

// deliver delivers the export ending at the export.completed b (stream
// sequence end) to vendor v, unless the vendor already has it.
func (f *Fanout) deliver(ctx context.Context, v Vendor, b messages.Boundary, end uint64) error {
	st, err := loadState(ctx, f.deps.Store, v.Name, b.Tenant)
	if err != nil {
		return err
	}
	if st.LastSeq >= end || st.ExportID == b.ExportID {
		return nil // delivered before the acknowledgement was lost
	}
	x := &export{f: f, vendor: v, done: b, end: end, st: st, sum: snapshot.Checksum(st.Checksum),
		counts: map[pifu.Entity]*messages.Counts{}, totals: map[pifu.Entity]int{}}
	for _, e := range pifu.Entities {
		x.counts[e] = &messages.Counts{}
		x.totals[e] = st.Totals[e]
	}
	if err := x.relations(ctx); err != nil {
		return err
	}
	// Count first: export.started carries the vendor's counts.
	if err := x.scan(ctx, x.count); err != nil {
		return err
	}
	if err := x.publish(ctx); err != nil {
		return err
	}
	next := state{LastSeq: end, ExportID: b.ExportID, Checksum: uint64(x.sum), Totals: x.totals}
	if x.newIndex != nil {
		if next.Index, err = x.newIndex.MarshalBinary(); err != nil {
			return err
		}
	}
	return storeState(ctx, f.deps.Store, v.Name, b.Tenant, next)
}

// relations sets the projector up: for a profile without guardians, the
// index before the export (stored with the last one) and after it (carried
// over the export's changes).
func (x *export) relations(ctx context.Context) error {
	if x.vendor.Profile.Has(projection.Guardians) {
		p, err := projection.New(x.vendor.Profile, nil)
		x.proj = p
		return err
	}
	before := projection.NewIndex().Build()
	if len(x.st.Index) > 0 {
		if err := before.UnmarshalBinary(x.st.Index); err != nil {
			return err
		}
	}
	after := before.Clone()
	if err := x.scan(ctx, func(_ messages.Event, c projection.Canonical) error {
		after.Apply(c)
		return nil
	}); err != nil {
		return err
	}
	p, err := projection.New(x.vendor.Profile, after)
	if err != nil {
		return err
	}
	if err := p.SetRelations(before, after); err != nil {
		return err
	}
	x.proj, x.newIndex = p, after
	return nil
}

// count counts one change as the vendor will receive it, and moves the
// vendor's checksum and totals.
func (x *export) count(ev messages.Event, c projection.Canonical) error {
	ch, err := x.proj.Change(c)
	if err != nil || !ch.Sent() {
		return err
	}
	n := x.counts[ev.Entity]
	k := snapshot.KeyHash(ev.Entity, ev.Key)
	switch ch.Op {
	case messages.OpCreated:
		n.Created++
		x.totals[ev.Entity]++
		x.sum += snapshot.Checksum(snapshot.Mix(k, ch.Content))
	case messages.OpUpdated:
		n.Updated++
		x.sum += snapshot.Checksum(snapshot.Mix(k, ch.Content)) - snapshot.Checksum(snapshot.Mix(k, ch.Old))
	case messages.OpDeleted:
		n.Deleted++
		x.totals[ev.Entity]--
		x.sum -= snapshot.Checksum(snapshot.Mix(k, ch.Old))
	}
	return nil
}

// scan calls fn with every change event of the export, in stream order:
// the events of the tenant after the last export delivered, up to the
// export's export.completed, that belong to this export (a partial export
// a publisher gave up on is not the tenant's state, and is left out). It
// notes the export's export.started on the way.
func (x *export) scan(ctx context.Context, fn func(messages.Event, projection.Canonical) error) error {
	filter, err := messages.TenantEventsFilter(x.done.Tenant)
	if err != nil {
		return err
	}
	oc, err := x.f.deps.JS.OrderedConsumer(ctx, bus.StreamLMS, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: x.st.LastSeq + 1})
	if err != nil {
		return fmt.Errorf("read the export %s of %s: %w", x.done.ExportID, x.done.Tenant, err)
	}
	it, err := oc.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the export %s of %s: %w", x.done.ExportID, x.done.Tenant, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := meta.Sequence.Stream
		if seq > x.end {
			return fmt.Errorf("read the export %s of %s: passed its export.completed at %d", x.done.ExportID, x.done.Tenant, x.end)
		}
		msg := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
		l, err := messages.ParseLMSSubject(m.Subject())
		if err != nil {
			return err
		}
		if l.IsBoundary() {
			if seq == x.end {
				return nil
			}
			if l.Phase == messages.PhaseStarted {
				b, err := messages.Decode[messages.Boundary](msg)
				if err != nil {
					return err
				}
				if b.ExportID == x.done.ExportID {
					x.started = b
				}
			}
			continue
		}
		ev, err := messages.Decode[messages.Event](msg)
		if err != nil {
			return err
		}
		if ev.ExportID != x.done.ExportID {
			continue
		}
		c, err := projection.Decode(ev.Entity, ev.Op, ev.Object, ev.Previous)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if err := fn(ev, c); err != nil {
			return err
		}
	}
}

// publish publishes the vendor's export.started, its changes and its
// export.completed, and waits for every acknowledgement.
func (x *export) publish(ctx context.Context) error {
	var mu sync.Mutex
	var first error
	js, err := jetstream.New(x.f.deps.Conn, jetstream.WithPublishAsyncMaxPending(x.f.cfg.Window),
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
	v, t := x.vendor.Name, x.done.Tenant
	started := x.started
	if started.ID == "" {
		started = messages.Boundary{ID: messages.BoundaryID(t, x.done.ExportID, messages.PhaseStarted),
			Tenant: t, ExportID: x.done.ExportID, Phase: messages.PhaseStarted, Time: x.done.Time}
	}
	counts := x.boundaryCounts()
	if err := x.sendBoundary(send, started, counts, ""); err != nil {
		return err
	}
	if err := x.scan(ctx, func(ev messages.Event, c projection.Canonical) error {
		ch, err := x.proj.Change(c)
		if err != nil || !ch.Sent() {
			return err
		}
		vid := VendorEventID(ev.ID, v)
		m, err := messages.Encode(messages.Event{ID: vid, Tenant: t, ExportID: ev.ExportID, Entity: ev.Entity,
			Op: ch.Op, Key: ev.Key, Time: ev.Time, Object: ch.Object, Previous: ch.Previous})
		if err != nil {
			return err
		}
		if m.Subject, err = messages.VendorEventSubject(v, t, ev.Entity, ch.Op); err != nil {
			return err
		}
		return send(m)
	}); err != nil {
		return err
	}
	if err := x.sendBoundary(send, x.done, counts, messages.FormatChecksum(x.sum)); err != nil {
		return err
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(x.f.cfg.AckWait):
		return errors.New("the vendor's stream did not acknowledge the export in time")
	}
	return failed()
}

// boundaryCounts are the vendor's counts of the export.
func (x *export) boundaryCounts() map[pifu.Entity]messages.Counts {
	out := map[pifu.Entity]messages.Counts{}
	for e, n := range x.counts {
		c := *n
		c.Total = x.totals[e]
		c.Unchanged = c.Total - c.Created - c.Updated
		out[e] = c
	}
	return out
}

// sendBoundary sends the vendor's copy of the canonical boundary b.
func (x *export) sendBoundary(send func(*nats.Msg) error, b messages.Boundary, counts map[pifu.Entity]messages.Counts, checksum string) error {
	vb := messages.Boundary{ID: VendorEventID(b.ID, x.vendor.Name), Tenant: b.Tenant, ExportID: b.ExportID,
		Phase: b.Phase, Time: b.Time, Counts: counts, Checksum: checksum, Findings: b.Findings}
	m, err := messages.Encode(vb)
	if err != nil {
		return err
	}
	if m.Subject, err = messages.VendorBoundarySubject(x.vendor.Name, b.Tenant, b.Phase); err != nil {
		return err
	}
	return send(m)
}
