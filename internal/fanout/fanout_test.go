package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const (
	tenantA = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	tenantB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

var at = time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)

// world is a bus with the canonical exports of two tenants, three
// generations each, published as the publisher does; two more generations
// of each are made, for a test to publish.
type world struct {
	b       *bus.Bus
	store   jetstream.ObjectStore
	docs    map[string][][]byte // tenant -> export documents, by generation
	vendors []fanout.Vendor
	stages  []*fanout.Fanout // every stage run started, in order
	meter   metric.MeterProvider
}

func exportID(tenant string, gen int) string { return fmt.Sprintf("%s-gen%d", tenant[:8], gen) }

func newWorld(t *testing.T) *world {
	t.Helper()
	preset := "small"
	if testing.Short() {
		preset = "tiny"
	}
	w := &world{b: bustest.Open(t), docs: map[string][][]byte{}}
	prof := func(parts ...string) projection.Profile {
		p, err := projection.ParseProfile(parts...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	w.vendors = []fanout.Vendor{
		{Name: "roster-a", Tenants: []string{tenantA}, Profile: prof()},
		{Name: "contact-ab", Tenants: []string{tenantA, tenantB}, Profile: prof("contact")},
		{Name: "guardians-b", Tenants: []string{tenantB}, Profile: prof("guardians", "national_id")},
	}
	var names []string
	for _, v := range w.vendors {
		names = append(names, v.Name)
	}
	var err error
	if w.store, err = bus.ProvisionVendors(context.Background(), w.b.JS, bus.ProvisionConfig{}, names); err != nil {
		t.Fatal(err)
	}
	sizes, _ := rostergen.Preset(preset)
	for i, tenant := range []string{tenantA, tenantB} {
		m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Kommune " + tenant[:4], Seed: uint64(i + 1), Sizes: sizes, Churn: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		for g := range 5 {
			var buf bytes.Buffer
			if _, err := m.WriteExport(context.Background(), &buf, uint64(g)); err != nil {
				t.Fatal(err)
			}
			w.docs[tenant] = append(w.docs[tenant], buf.Bytes())
		}
	}
	for g := range 3 {
		for _, tenant := range []string{tenantA, tenantB} {
			if g == 1 && tenant == tenantA {
				w.publishPartial(t, tenant)
			}
			w.publishExport(t, tenant, g)
		}
	}
	return w
}

func (w *world) publish(t testing.TB, v messages.Codable) {
	t.Helper()
	m, err := messages.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.JS.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// changes runs the diff of generation g of tenant against the one before.
func (w *world) changes(t testing.TB, tenant string, g int, fn func(diff.Change)) diff.Result {
	t.Helper()
	docs := w.docs[tenant]
	in := diff.Input{Tenant: tenant, ExportID: exportID(tenant, g), Next: pifu.NewDecoder(bytes.NewReader(docs[g]))}
	if g > 0 {
		prev, _, err := snapshot.FromRecords(tenant, exportID(tenant, g-1), pifu.NewDecoder(bytes.NewReader(docs[g-1])))
		if err != nil {
			t.Fatal(err)
		}
		in.Prev = prev
		in.OpenPrev = func(context.Context) (diff.RecordReader, io.Closer, error) {
			return pifu.NewDecoder(bytes.NewReader(docs[g-1])), io.NopCloser(nil), nil
		}
	}
	res, err := diff.Run(context.Background(), diff.Config{SpoolDir: t.TempDir(), DeleteThreshold: 1}, in,
		func(_ context.Context, c diff.Change) error { fn(c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func event(tenant, export string, c diff.Change) messages.Event {
	return messages.Event{ID: c.ID, Tenant: tenant, ExportID: export, Entity: c.Entity, Op: messages.Op(c.Op),
		Key: c.Key, Time: at, Object: c.Object, Previous: c.Previous}
}

// publishExport publishes generation g of tenant as the publisher does:
// export.started, the changes, export.completed with the checksum.
func (w *world) publishExport(t testing.TB, tenant string, g int) {
	t.Helper()
	id := exportID(tenant, g)
	var evs []messages.Event
	res := w.changes(t, tenant, g, func(c diff.Change) { evs = append(evs, event(tenant, id, c)) })
	counts := map[pifu.Entity]messages.Counts{}
	for e, c := range res.Counts {
		counts[e] = messages.Counts{Created: c.Created, Updated: c.Updated, Deleted: c.Deleted, Unchanged: c.Unchanged,
			Total: res.Snapshot.Count(e)}
	}
	w.publish(t, messages.Boundary{ID: messages.BoundaryID(tenant, id, messages.PhaseStarted), Tenant: tenant, ExportID: id,
		Phase: messages.PhaseStarted, Time: at, Counts: counts})
	for _, ev := range evs {
		w.publish(t, ev)
	}
	w.publish(t, messages.Boundary{ID: messages.BoundaryID(tenant, id, messages.PhaseCompleted), Tenant: tenant, ExportID: id,
		Phase: messages.PhaseCompleted, Time: at, Counts: counts, Checksum: messages.FormatChecksum(res.Snapshot.Checksum())})
}

// publishPartial publishes the start of an export a publisher gave up on:
// its export.started and a few changes, never completed. They are not the
// tenant's state, and no vendor may see them.
func (w *world) publishPartial(t *testing.T, tenant string) {
	t.Helper()
	id := "abandoned"
	w.publish(t, messages.Boundary{ID: messages.BoundaryID(tenant, id, messages.PhaseStarted), Tenant: tenant, ExportID: id,
		Phase: messages.PhaseStarted, Time: at})
	n := 0
	w.changes(t, tenant, 1, func(c diff.Change) {
		if n < 5 {
			ev := event(tenant, id, c)
			ev.ID = "abandoned-" + ev.ID
			w.publish(t, ev)
		}
		n++
	})
}

// run runs the stage for cfg.Vendors (default: the world's) on the bus's
// connection, or on nc if given.
func (w *world) run(t *testing.T, cfg fanout.Config, nc ...*nats.Conn) (stop func()) {
	t.Helper()
	if cfg.Vendors == nil {
		cfg.Vendors = w.vendors
	}
	cfg.Poll, cfg.Retry = 100*time.Millisecond, 100*time.Millisecond
	deps := fanout.Deps{Conn: w.b.Conn, JS: w.b.JS, Store: w.store, Snapshots: w.b.Stores.Snapshots, Exports: w.b.Stores.Exports}
	if len(nc) > 0 {
		js, err := jetstream.New(nc[0])
		if err != nil {
			t.Fatal(err)
		}
		store, err := js.ObjectStore(context.Background(), bus.ObjectFanout)
		if err != nil {
			t.Fatal(err)
		}
		deps = fanout.Deps{Conn: nc[0], JS: js, Store: store, Snapshots: objectStore(t, js, bus.ObjectSnapshots),
			Exports: objectStore(t, js, bus.ObjectExports)}
	}
	deps.Meter = w.meter
	f, err := fanout.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	w.stages = append(w.stages, f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("fanout.Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("fanout.Run did not return within 10s of its context's end")
		}
	}
	t.Cleanup(stop)
	return stop
}

// completed counts the export.completed events in vendor's stream.
func (w *world) completed(t *testing.T, vendor string) int {
	n := 0
	for _, m := range bustest.Msgs(t, w.b.JS, bus.VendorStream(vendor)) {
		if strings.HasSuffix(m.Subject, ".export.completed") {
			n++
		}
	}
	return n
}

// waitDelivered waits until every vendor has every export of its tenants.
func (w *world) waitDelivered(t *testing.T) {
	t.Helper()
	waitfor.Condition(t, 60*time.Second, func() error { return w.delivered(t) })
}

func (w *world) delivered(t *testing.T) error {
	for _, v := range w.vendors {
		if n, want := w.completed(t, v.Name), 3*len(v.Tenants); n != want {
			return fmt.Errorf("vendor %s: %d exports delivered of %d", v.Name, n, want)
		}
	}
	return nil
}

// truth is what vendor v must hold of tenant after generation g.
func (w *world) truth(t *testing.T, v fanout.Vendor, tenant string, g int) *snapshot.Snapshot {
	t.Helper()
	doc := w.docs[tenant][g]
	ix := projection.NewIndex()
	d := pifu.NewDecoder(bytes.NewReader(doc))
	for {
		r, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ix.Add(r)
	}
	p, err := projection.New(v.Profile, ix.Build())
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := p.Snapshot(tenant, "truth", pifu.NewDecoder(bytes.NewReader(doc)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify reads each vendor's stream in order as a vendor would, applying
// the events to a copy per tenant, and checks at every export.completed
// that the copy is the truth and its checksum the one announced; that the
// stream holds only the vendor's tenants, each event once, in export
// order; and that a roster vendor never sees contact data or a national id.
func (w *world) verify(t *testing.T) {
	t.Helper()
	if n := w.mismatches(); n != 0 {
		t.Errorf("%d exports whose change events did not add up to their checksum", n)
	}
	for _, v := range w.vendors {
		msgs := bustest.Msgs(t, w.b.JS, bus.VendorStream(v.Name))
		ids := map[string]bool{}
		held := map[string]map[uint64][]byte{} // tenant -> key hash -> object
		gen := map[string]int{}
		open := map[string]string{} // tenant -> export id between its boundaries
		for _, m := range msgs {
			id := m.Header.Get(messages.HeaderMsgID)
			if ids[id] {
				t.Fatalf("%s: %s %s stored twice", v.Name, m.Subject, id)
			}
			ids[id] = true
			parts := strings.Split(m.Subject, ".")
			if len(parts) != 5 || parts[0] != "vendor" || parts[1] != v.Name {
				t.Fatalf("%s: subject %s", v.Name, m.Subject)
			}
			tenant := parts[2]
			if !strings.Contains(strings.Join(v.Tenants, " "), tenant) {
				t.Fatalf("%s: an event of tenant %s, which is not linked to it", v.Name, tenant)
			}
			if held[tenant] == nil {
				held[tenant] = map[uint64][]byte{}
			}
			nm := bustest.NATSMsg(m)
			if parts[3] == "export" {
				b, err := messages.Decode[messages.Boundary](nm)
				if err != nil {
					t.Fatal(err)
				}
				if b.ExportID != exportID(tenant, gen[tenant]) {
					t.Fatalf("%s: boundary of export %s, want %s", v.Name, b.ExportID, exportID(tenant, gen[tenant]))
				}
				if b.Phase == messages.PhaseStarted {
					open[tenant] = b.ExportID
					continue
				}
				if open[tenant] != b.ExportID {
					t.Fatalf("%s: export.completed of %s without its export.started", v.Name, b.ExportID)
				}
				delete(open, tenant)
				var sum snapshot.Checksum
				for k, o := range held[tenant] {
					sum.Add(k, xxhash.Sum64(o))
				}
				want := w.truth(t, v, tenant, gen[tenant])
				if b.Checksum != messages.FormatChecksum(sum) || sum != want.Checksum() || len(held[tenant]) != want.Len() {
					t.Fatalf("%s, %s: announced %s, copy %s with %d records, truth %s with %d",
						v.Name, b.ExportID, b.Checksum, sum, len(held[tenant]), want.Checksum(), want.Len())
				}
				total := 0
				for _, c := range b.Counts {
					total += c.Total
				}
				if total != want.Len() {
					t.Fatalf("%s, %s: counts total %d, want %d", v.Name, b.ExportID, total, want.Len())
				}
				gen[tenant]++
				continue
			}
			ev, err := messages.Decode[messages.Event](nm)
			if err != nil {
				t.Fatal(err)
			}
			if open[tenant] != ev.ExportID {
				t.Fatalf("%s: event of export %s outside its boundaries", v.Name, ev.ExportID)
			}
			if !v.Profile.Has(projection.Contact) && (bytes.Contains(ev.Object, []byte(`"email"`)) || bytes.Contains(ev.Object, []byte(`"tel"`))) ||
				!v.Profile.Has(projection.NationalID) && bytes.Contains(ev.Object, []byte("personNIN")) {
				t.Fatalf("%s: %s carries what its profile removes: %s", v.Name, ev.Key, ev.Object)
			}
			k := snapshot.KeyHash(ev.Entity, ev.Key)
			_, had := held[tenant][k]
			switch {
			case ev.Op == messages.OpCreated && had, ev.Op != messages.OpCreated && !had:
				t.Fatalf("%s: %s of %s %s: held %v", v.Name, ev.Op, ev.Entity, ev.Key, had)
			case ev.Op == messages.OpDeleted:
				delete(held[tenant], k)
			default:
				held[tenant][k] = bytes.Clone(ev.Object)
			}
		}
		for _, tenant := range v.Tenants {
			if gen[tenant] != 3 {
				t.Errorf("%s: %d exports of %s verified", v.Name, gen[tenant], tenant)
			}
		}
		t.Logf("%s: %d messages verified", v.Name, len(msgs))
	}
}

func TestDeliversEachVendorItsView(t *testing.T) {
	w := newWorld(t)
	stop := w.run(t, fanout.Config{})
	w.waitDelivered(t)
	stop()
	w.verify(t)
	// A second run that has lost every position (as if every
	// acknowledgement was lost) reads every export.completed again and
	// delivers nothing more.
	counts := map[string]int{}
	for _, v := range w.vendors {
		counts[v.Name] = len(bustest.Msgs(t, w.b.JS, bus.VendorStream(v.Name)))
		if err := w.b.JS.DeleteConsumer(context.Background(), bus.StreamLMS, fanout.ConsumerName(v.Name)); err != nil {
			t.Fatal(err)
		}
	}
	stop = w.run(t, fanout.Config{})
	waitfor.Condition(t, 10*time.Second, func() error {
		for _, v := range w.vendors {
			info, err := w.b.JS.Consumer(context.Background(), bus.StreamLMS, fanout.ConsumerName(v.Name))
			if err != nil {
				return err
			}
			ci, err := info.Info(context.Background())
			if err != nil {
				return err
			}
			if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.AckFloor.Consumer != uint64(3*len(v.Tenants)) {
				return fmt.Errorf("%s: %d pending, %d awaiting ack, %d acknowledged", v.Name, ci.NumPending, ci.NumAckPending, ci.AckFloor.Consumer)
			}
		}
		return nil
	})
	stop()
	for _, v := range w.vendors {
		if n := len(bustest.Msgs(t, w.b.JS, bus.VendorStream(v.Name))); n != counts[v.Name] {
			t.Errorf("%s: %d messages after a second run, %d before", v.Name, n, counts[v.Name])
		}
	}
}

// A fan-out whose vendor stream refuses writes midway, and that is then
// killed (its connection gone, nothing handed back) and started again,
// delivers each event once and in order.
func TestRedoAfterAFailureMidway(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const room = 40
	name := bus.VendorStream("contact-ab")
	s, err := w.b.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := info.Config
	limited := full
	limited.MaxMsgs, limited.Discard = room, jetstream.DiscardNew
	if _, err := w.b.JS.UpdateStream(ctx, limited); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(w.b.Conn.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	const ackWait = 2 * time.Second
	stop := w.run(t, fanout.Config{Window: 8, AckWait: ackWait}, nc)
	waitfor.Condition(t, 30*time.Second, func() error {
		if n := len(bustest.Msgs(t, w.b.JS, name)); n < room {
			return fmt.Errorf("%d messages of %d", n, room)
		}
		return nil
	})
	nc.Close() // killed while its export keeps failing
	stop()
	if n := w.completed(t, "contact-ab"); n != 0 {
		t.Fatalf("%d exports completed in %d messages", n, room)
	}
	if _, err := w.b.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	w.run(t, fanout.Config{AckWait: ackWait})
	w.waitDelivered(t)
	w.verify(t)
}
