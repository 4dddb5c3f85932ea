package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// FanoutFigures are one fan-out measurement: the first export delivered to
// Vendors new vendors at once.
type FanoutFigures struct {
	Vendors int `json:"vendors"`
	// Events are the vendor events stored, summed over the vendors
	// (boundaries not counted); Took the time from the stage's start to the
	// last vendor's export.completed stored (server timestamp);
	// EventRate = Events / Took.
	Events    int           `json:"events"`
	Took      time.Duration `json:"took_ns"`
	EventRate float64       `json:"event_rate"`
	// RawRate is the raw asynchronous publish rate of as many messages as
	// the vendors stored (at most MaxFanoutRaw), of their average stored
	// size, with unique Nats-Msg-Id, measured on the same server right
	// after the fan-out: the same load on the machine as far as can be.
	// RateRatio = EventRate / RawRate.
	RawRate   float64 `json:"raw_rate"`
	RateRatio float64 `json:"rate_ratio"`
}

// MaxFanoutRaw is the most messages the raw rate beside a fan-out is
// measured with.
const MaxFanoutRaw = 1_000_000

// noSnapshots is the empty snapshot store a fan-out measurement's stage is
// given.
const noSnapshots = "bench-no-snapshots"

// fanoutProfiles are the vendors' profiles, in turn: roster, and roster
// with contact.
var fanoutProfiles = [][]string{nil, {"contact"}}

// measureFanout runs the fan-out stage in this process for n new vendors
// linked to the bench's tenant, whose first export the LMS stream holds,
// until every vendor's stream has its export.completed, measures the raw
// rate beside it, then removes the vendors' streams, consumers and state.
// lms is the LMS stream's configuration, the raw stream's model.
func measureFanout(ctx context.Context, b *bus.Bus, n int, lms jetstream.StreamConfig, tag string) (FanoutFigures, error) {
	ff := FanoutFigures{Vendors: n}
	var vendors []fanout.Vendor
	var names []string
	for i := range n {
		prof, err := projection.ParseProfile(fanoutProfiles[i%len(fanoutProfiles)]...)
		if err != nil {
			return ff, err
		}
		name := fmt.Sprintf("bench-%s-%d-of-%d", tag, i+1, n)
		vendors = append(vendors, fanout.Vendor{Name: name, Tenants: []string{Tenant}, Profile: prof})
		names = append(names, name)
	}
	store, err := bus.ProvisionVendors(ctx, b.JS, bus.ProvisionConfig{}, names)
	if err != nil {
		return ff, err
	}
	defer removeVendors(b.JS, store, names)
	// The vendors are as if linked before the first export: the stage is
	// shown no snapshot of the tenant (an empty store), so it does not join
	// them with a resync of the tenant's state but delivers the export from
	// the LMS stream, as to vendors linked from the start.
	none, err := b.JS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: noSnapshots})
	if err != nil {
		return ff, fmt.Errorf("an empty snapshot store: %w", err)
	}
	defer func() { _ = b.JS.DeleteObjectStore(context.Background(), noSnapshots) }()
	// Room for the large municipality's first export (about 800,000 change
	// events, about 600 MB decoded): the bench measures the shared read.
	f, err := fanout.New(fanout.Config{Vendors: vendors, Poll: 50 * time.Millisecond, CacheEvents: 1_000_000},
		fanout.Deps{Conn: b.Conn, JS: b.JS, Store: store, Snapshots: none, Exports: b.Stores.Exports})
	if err != nil {
		return ff, err
	}
	run, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f.Run(run) }()

	var last time.Time
	pending := append([]string(nil), names...)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for len(pending) > 0 {
		v := pending[0]
		subj, err := messages.VendorBoundarySubject(v, Tenant, messages.PhaseCompleted)
		if err != nil {
			return ff, err
		}
		m, at, err := lastMsg(ctx, b.JS, bus.VendorStream(v), subj)
		if err == nil {
			bd, derr := messages.Decode[messages.Boundary](m)
			switch {
			case derr != nil:
				return ff, derr
			case bd.Resync:
				return ff, fmt.Errorf("vendor %s got a resync, not the export from the LMS stream", v)
			}
		}
		switch {
		case err == nil:
			if at.After(last) {
				last = at
			}
			pending = pending[1:]
			continue
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)):
			// A server busy storing the vendors' events answers late: ask again.
		default:
			return ff, err
		}
		select {
		case <-ctx.Done():
			return ff, ctx.Err()
		case err := <-done:
			return ff, fmt.Errorf("the fan-out stopped before vendor %s had the export: %v", v, err)
		case <-t.C:
		}
	}
	ff.Took = last.Sub(start)
	stop()
	if err := <-done; err != nil {
		return ff, fmt.Errorf("fan-out: %w", err)
	}
	var bytes uint64
	for _, v := range names {
		info, err := streamInfo(ctx, b.JS, bus.VendorStream(v))
		if err != nil {
			return ff, err
		}
		ff.Events += int(info.State.Msgs) - 2 // export.started and export.completed
		bytes += info.State.Bytes
	}
	if ff.Events <= 0 {
		return ff, fmt.Errorf("the vendors stored no event of the first export")
	}
	ff.EventRate = float64(ff.Events) / ff.Took.Seconds()
	removeVendors(b.JS, store, names) // their disk, before the raw stream's
	if err := b.JS.DeleteStream(ctx, rawStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return ff, err
	}
	if ff.RawRate, err = rawRate(ctx, b, lms, int(bytes)/(ff.Events+2*n), min(ff.Events, MaxFanoutRaw)); err != nil {
		return ff, err
	}
	if err := b.JS.DeleteStream(ctx, rawStream); err != nil {
		return ff, err
	}
	ff.RateRatio = ff.EventRate / ff.RawRate
	return ff, nil
}

// removeVendors deletes what a fan-out measurement made: the vendors'
// streams (a large export's copies take gigabytes), their consumers on the
// LMS stream and their state.
func removeVendors(js jetstream.JetStream, store jetstream.ObjectStore, names []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, v := range names {
		_ = js.DeleteStream(ctx, bus.VendorStream(v))
		_ = js.DeleteConsumer(ctx, bus.StreamLMS, fanout.ConsumerName(v))
		_ = store.Delete(ctx, v+"."+Tenant)
	}
}
