package fanout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// tenantC is linked to a vendor but never exported.
const tenantC = "c0ffee00-0000-4000-8000-000000000001"

// The fan-out reads the publisher's snapshot objects by the publisher's
// names and metadata keys, and answers on the vendors' inbox prefix.
func TestPublisherNames(t *testing.T) {
	if publisher.MetaExportID != "skolebuss-export-id" || publisher.MetaExportObject != "skolebuss-export-object" ||
		publisher.SnapshotName(tenantA) != tenantA {
		t.Fatal("the publisher's snapshot names changed: change the fan-out's (resync.go) with them")
	}
	if fanout.InboxPrefix("roster-a") != natsauth.InboxPrefix("roster-a") {
		t.Fatal("the fan-out answers on another inbox prefix than the vendors' users receive on")
	}
}

// newBareWorld is a bus with the vendors of newWorld (guardians-b also
// linked to tenantC) and five generations of each tenant's export made of
// the preset, none published.
func newBareWorld(t testing.TB, preset string) *world {
	t.Helper()
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
		{Name: "guardians-b", Tenants: []string{tenantB, tenantC}, Profile: prof("guardians", "national_id")},
	}
	w.provision(t)
	sizes, _ := rostergen.Preset(preset)
	for i, tenant := range []string{tenantA, tenantB} {
		m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Kommune " + tenant[:4], Seed: uint64(i + 1), Sizes: sizes, Churn: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		for g := range 3 {
			var buf bytes.Buffer
			if _, err := m.WriteExport(context.Background(), &buf, uint64(g)); err != nil {
				t.Fatal(err)
			}
			w.docs[tenant] = append(w.docs[tenant], buf.Bytes())
		}
	}
	return w
}

func (w *world) provision(t testing.TB) {
	t.Helper()
	var names []string
	for _, v := range w.vendors {
		names = append(names, v.Name)
	}
	var err error
	if w.store, err = bus.ProvisionVendors(context.Background(), w.b.JS, bus.ProvisionConfig{}, names); err != nil {
		t.Fatal(err)
	}
}

func exportObject(tenant string, g int) string { return "export-" + exportID(tenant, g) }

// settle stores generation g of tenant as the publisher does once its
// export.completed is stored: the export object in "exports", the snapshot
// naming it in "snapshots", and the export object of the snapshot it
// replaces deleted.
func (w *world) settle(t testing.TB, tenant string, g int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a large export takes more than 5 s to store
	defer cancel()
	doc := w.docs[tenant][g]
	if _, err := w.b.Stores.Exports.PutBytes(ctx, exportObject(tenant, g), doc); err != nil {
		t.Fatal(err)
	}
	s, _, err := snapshot.FromRecords(tenant, exportID(tenant, g), pifu.NewDecoder(bytes.NewReader(doc)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.Stores.Snapshots.Put(ctx, jetstream.ObjectMeta{Name: publisher.SnapshotName(tenant),
		Metadata: map[string]string{publisher.MetaExportID: exportID(tenant, g), publisher.MetaExportObject: exportObject(tenant, g)}},
		&buf); err != nil {
		t.Fatal(err)
	}
	if g > 0 {
		if err := w.b.Stores.Exports.Delete(ctx, exportObject(tenant, g-1)); err != nil {
			t.Fatal(err)
		}
	}
}

// publishSettled publishes generation g of tenant and settles it.
func (w *world) publishSettled(t testing.TB, tenant string, g int) {
	t.Helper()
	w.publishExport(t, tenant, g)
	w.settle(t, tenant, g)
}

// delivery is one export as a vendor received it.
type delivery struct {
	exportID string
	resync   bool
	checksum string
	records  int
}

// replay reads vendor's stream in order as a vendor would: each event
// once (by its Nats-Msg-Id), a resync's export.started dropping the
// tenant's copy, every change applied to a copy per tenant, and at each
// export.completed the copy's checksum (computed from the objects as a
// vendor computes it) and records equal to what it announces. each, when
// given, sees every change event. It returns the deliveries per tenant and
// the copies.
func (w *world) replay(t testing.TB, vendor string, each func(messages.Event)) (map[string][]delivery, map[string]map[uint64][]byte) {
	t.Helper()
	ids := map[string]bool{}
	held := map[string]map[uint64][]byte{}
	out := map[string][]delivery{}
	open := map[string]messages.Boundary{}
	for _, m := range readStream(t, w.b.JS, bus.VendorStream(vendor)) {
		id := m.Header.Get(messages.HeaderMsgID)
		if ids[id] {
			t.Fatalf("%s: %s %s stored twice", vendor, m.Subject, id)
		}
		ids[id] = true
		v, subj, err := messages.ParseVendorSubject(m.Subject)
		if err != nil || v != vendor {
			t.Fatalf("%s: subject %s: %v", vendor, m.Subject, err)
		}
		tenant := subj.Tenant
		if held[tenant] == nil {
			held[tenant] = map[uint64][]byte{}
		}
		if subj.IsBoundary() {
			b, err := messages.Decode[messages.Boundary](m)
			if err != nil {
				t.Fatal(err)
			}
			if b.Phase == messages.PhaseStarted {
				if b.Resync {
					held[tenant] = map[uint64][]byte{}
				}
				open[tenant] = b
				continue
			}
			st, ok := open[tenant]
			if !ok || st.ExportID != b.ExportID || st.Resync != b.Resync {
				t.Fatalf("%s: export.completed of %s (resync %v) after export.started %+v", vendor, b.ExportID, b.Resync, st)
			}
			delete(open, tenant)
			var sum snapshot.Checksum
			for k, o := range held[tenant] {
				sum.Add(k, xxhash.Sum64(o))
			}
			total := 0
			for _, c := range b.Counts {
				total += c.Total
			}
			if b.Checksum != messages.FormatChecksum(sum) || total != len(held[tenant]) {
				t.Fatalf("%s, %s: announced %s and %d records, the copy has %s and %d", vendor, b.ExportID, b.Checksum, total,
					messages.FormatChecksum(sum), len(held[tenant]))
			}
			out[tenant] = append(out[tenant], delivery{exportID: b.ExportID, resync: b.Resync, checksum: b.Checksum, records: total})
			continue
		}
		ev, err := messages.Decode[messages.Event](m)
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := open[tenant]; !ok || st.ExportID != ev.ExportID {
			t.Fatalf("%s: event of export %s outside its boundaries", vendor, ev.ExportID)
		}
		if open[tenant].Resync && ev.Op != messages.OpCreated {
			t.Fatalf("%s: a resync carries a %s", vendor, ev.Op)
		}
		if each != nil {
			each(ev)
		}
		k := snapshot.KeyHash(ev.Entity, ev.Key)
		_, had := held[tenant][k]
		switch {
		case ev.Op == messages.OpCreated && had, ev.Op != messages.OpCreated && !had:
			t.Fatalf("%s: %s of %s %s: held %v", vendor, ev.Op, ev.Entity, ev.Key, had)
		case ev.Op == messages.OpDeleted:
			delete(held[tenant], k)
		default:
			held[tenant][k] = bytes.Clone(ev.Object)
		}
	}
	return out, held
}

// vendorOf is the world's vendor called name.
func (w *world) vendorOf(t testing.TB, name string) fanout.Vendor {
	for _, v := range w.vendors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no vendor %s", name)
	return fanout.Vendor{}
}

// waitDeliveries waits until vendor has received n exports of tenant.
func (w *world) waitDeliveries(t *testing.T, vendor, tenant string, n int) []delivery {
	t.Helper()
	var got []delivery
	waitfor.Condition(t, 60*time.Second, func() error {
		d, _ := w.replay(t, vendor, nil)
		if got = d[tenant]; len(got) < n {
			return fmt.Errorf("%s: %d exports of %s, want %d", vendor, len(got), tenant, n)
		}
		return nil
	})
	return got
}

// checkTruth checks that d is generation g of tenant as vendor must hold it.
func (w *world) checkTruth(t *testing.T, vendor, tenant string, g int, d delivery, resync bool) {
	t.Helper()
	want := w.truth(t, w.vendorOf(t, vendor), tenant, g)
	if d.exportID != exportID(tenant, g) || d.resync != resync || d.checksum != messages.FormatChecksum(want.Checksum()) || d.records != want.Len() {
		t.Errorf("%s, %s: got %+v, want export %s (resync %v), %s, %d records", vendor, tenant, d, exportID(tenant, g), resync,
			messages.FormatChecksum(want.Checksum()), want.Len())
	}
}

// vendorConn connects as vendor's clients do: with its inbox prefix.
func (w *world) vendorConn(t testing.TB, vendor string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(w.b.Conn.ConnectedUrl(), nats.CustomInboxPrefix(natsauth.InboxPrefix(vendor)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func request(t testing.TB, nc *nats.Conn, vendor, tenant, body string) messages.ResyncReply {
	t.Helper()
	subj, err := messages.ResyncRequestSubject(vendor, tenant)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nc.Request(subj, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subj, err)
	}
	var r messages.ResyncReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	if err := r.Validate(); err != nil {
		t.Fatalf("reply %q: %v", m.Data, err)
	}
	return r
}

// A vendor that joins a tenant with exported state gets a resync of the
// current state, not the stream's history, and the exports after it on
// top; a tenant exported for the first time after the vendor joined gets
// its first export as it is. A vendor's resync request is answered and
// the resync delivered, with the checksum the normal delivery of the same
// export had; requests for a tenant not linked, not exported, with a bad
// body, or with a reply subject outside the vendor's inbox are refused.
func TestJoinResyncAndRequest(t *testing.T) {
	preset := "small"
	if testing.Short() {
		preset = "tiny"
	}
	w := newBareWorld(t, preset)
	w.publishSettled(t, tenantA, 0)
	w.publishSettled(t, tenantA, 1)
	w.run(t, fanout.Config{})

	// Join: tenantA's state (generation 1) as one resync, not its history.
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 1)
		w.checkTruth(t, v, tenantA, 1, got[0], true)
	}
	// A new tenant: its first export as it is; and tenantA's next on top.
	w.publishSettled(t, tenantB, 0)
	w.publishSettled(t, tenantA, 2)
	for _, v := range []string{"roster-a", "contact-ab"} {
		got := w.waitDeliveries(t, v, tenantA, 2)
		w.checkTruth(t, v, tenantA, 2, got[1], false)
	}
	for _, v := range []string{"contact-ab", "guardians-b"} {
		got := w.waitDeliveries(t, v, tenantB, 1)
		w.checkTruth(t, v, tenantB, 0, got[0], false)
	}

	// A request answered and delivered: the same state, as a resync.
	nc := w.vendorConn(t, "contact-ab")
	r := request(t, nc, "contact-ab", tenantB, `{"reason":"our copy lost a week"}`)
	if !r.Accepted || r.ResyncID == "" {
		t.Fatalf("refused: %+v", r)
	}
	got := w.waitDeliveries(t, "contact-ab", tenantB, 2)
	w.checkTruth(t, "contact-ab", tenantB, 0, got[1], true)
	if got[1].checksum != got[0].checksum {
		t.Errorf("the resync's checksum %s, the normal delivery's %s", got[1].checksum, got[0].checksum)
	}
	// Asked again, delivered again; an empty body is a request too.
	if r2 := request(t, nc, "contact-ab", tenantB, ""); !r2.Accepted || r2.ResyncID == r.ResyncID {
		t.Fatalf("second request: %+v (first %s)", r2, r.ResyncID)
	}
	got = w.waitDeliveries(t, "contact-ab", tenantB, 3)
	w.checkTruth(t, "contact-ab", tenantB, 0, got[2], true)

	// Refusals.
	for _, c := range []struct{ vendor, tenant, body, want string }{
		{"contact-ab", tenantC, "", "not linked"},
		{"guardians-b", tenantC, "", "no exported state"},
		{"contact-ab", tenantA, `{"reason":"` + strings.Repeat("x", 201) + `"}`, "at most 200"},
		{"contact-ab", tenantA, `{"tenant":"x"}`, "unknown field"},
		{"nobody", tenantA, "", "no such vendor"},
	} {
		r := request(t, w.vendorConn(t, c.vendor), c.vendor, c.tenant, c.body)
		if r.Accepted || !strings.Contains(r.Error, c.want) {
			t.Errorf("%s %s %q: %+v, want a refusal saying %q", c.vendor, c.tenant, c.body, r, c.want)
		}
	}
	// A reply subject outside the requesting vendor's inbox: no answer,
	// and no resync.
	before := len(bustest.Msgs(t, w.b.JS, bus.VendorStream("roster-a")))
	spy := w.vendorConn(t, "contact-ab")
	subj, _ := messages.ResyncRequestSubject("roster-a", tenantA)
	var replies []*nats.Subscription
	for _, reply := range []string{"_INBOX_contact-ab.x", "_INBOX_roster-ab.x", "_INBOX.x", "elsewhere", "_INBOX_roster-a"} {
		sub, err := spy.SubscribeSync(reply)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, sub)
		if err := spy.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := nc.PublishRequest(subj, reply, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A request with a proper reply subject after them on the same
	// connection, to know they were all handled (one subscription handles
	// them in order).
	if r := request(t, nc, "contact-ab", tenantC, ""); r.Accepted {
		t.Fatal(r)
	}
	for _, sub := range replies {
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			t.Errorf("an answer on %s: %s", m.Subject, m.Data)
		}
	}
	got = w.waitDeliveries(t, "roster-a", tenantA, 2)
	if n := len(bustest.Msgs(t, w.b.JS, bus.VendorStream("roster-a"))); n != before || len(got) != 2 {
		t.Errorf("roster-a: %d messages, %d before: a refused request resynced", n, before)
	}
}

// A resync that fails midway, whose fan-out is then killed and started
// again, is redone with the same ids: the vendor's stream holds each event
// once, and the vendor's copy is the state.
func TestResyncRedoAfterACrash(t *testing.T) {
	w := newBareWorld(t, "small")
	w.vendors = w.vendors[1:2] // contact-ab
	w.publishSettled(t, tenantA, 0)
	w.publishSettled(t, tenantA, 1)
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
	stop := w.run(t, fanout.Config{Window: 8, AckWait: 2 * time.Second}, nc)
	waitfor.Condition(t, 30*time.Second, func() error {
		if n := len(bustest.Msgs(t, w.b.JS, name)); n < room {
			return fmt.Errorf("%d messages of %d", n, room)
		}
		return nil
	})
	nc.Close() // killed while its resync keeps failing
	stop()
	if _, err := w.b.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	w.run(t, fanout.Config{})
	got := w.waitDeliveries(t, "contact-ab", tenantA, 1)
	w.checkTruth(t, "contact-ab", tenantA, 1, got[0], true)
	want := w.truth(t, w.vendorOf(t, "contact-ab"), tenantA, 1).Len() + 2
	if n := len(bustest.Msgs(t, w.b.JS, name)); n != want {
		t.Errorf("%d messages, want %d: one resync's", n, want)
	}
}

// A roster-only vendor's resync of a medium or large municipality carries no e-mail,
// phone, address, birthday, national id or guardian link in any event,
// though the export has them; its checksum is the one a vendor computes.
func TestRosterResyncCarriesNoContactData(t *testing.T) {
	// A large municipality (700,000 events) takes minutes on two cores:
	// FANOUT_RESYNC_PRESET=large runs it.
	preset := "medium"
	if testing.Short() {
		preset = "small"
	}
	if p := os.Getenv("FANOUT_RESYNC_PRESET"); p != "" {
		preset = p
	}
	w := &world{b: bustest.Open(t), docs: map[string][][]byte{}}
	roster, _ := projection.ParseProfile()
	w.vendors = []fanout.Vendor{{Name: "roster", Tenants: []string{tenantA}, Profile: roster}}
	w.provision(t)
	sizes, _ := rostergen.Preset(preset)
	m, err := rostergen.New(rostergen.Spec{TenantID: tenantA, Name: "Kommune A", Seed: 7, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteExport(context.Background(), &buf, 0); err != nil {
		t.Fatal(err)
	}
	w.docs[tenantA] = [][]byte{buf.Bytes()}
	for _, k := range []string{`<email>`, `<tel `, `<pifu_tel `, `personNIN`, `<bday>`} {
		if !bytes.Contains(buf.Bytes(), []byte(k)) {
			t.Fatalf("the export has no %s: the test would prove nothing", k)
		}
	}
	w.settle(t, tenantA, 0) // the export's events aged out of the LMS stream: the state only
	want := w.truth(t, w.vendors[0], tenantA, 0)
	start := time.Now()
	w.run(t, fanout.Config{})
	waitfor.Condition(t, 5*time.Minute, func() error {
		info, err := w.b.JS.Stream(context.Background(), bus.VendorStream("roster"))
		if err != nil {
			return err
		}
		si, err := info.Info(context.Background())
		if err != nil {
			return err
		}
		if n := int(si.State.Msgs); n < want.Len()+2 {
			return fmt.Errorf("%d messages of %d", n, want.Len()+2)
		}
		return nil
	})
	t.Logf("resync of %d records stored after %v", want.Len(), time.Since(start))
	start = time.Now()
	forbidden := []string{`"email"`, `"tel"`, `"addresses"`, `"emails"`, `"phones"`, `"personNIN"`, `"contact_persons"`, `"bday"`}
	n := 0
	got, _ := w.replay(t, "roster", func(ev messages.Event) {
		n++
		for _, k := range forbidden {
			if bytes.Contains(ev.Object, []byte(k)) {
				t.Fatalf("%s %s carries %s: %s", ev.Entity, ev.Key, k, ev.Object)
			}
		}
	})
	if len(got[tenantA]) != 1 {
		t.Fatalf("%d deliveries", len(got[tenantA]))
	}
	w.checkTruth(t, "roster", tenantA, 0, got[tenantA][0], true)
	t.Logf("%d events checked (%s) in %v", n, preset, time.Since(start))
	if n != want.Len() {
		t.Errorf("%d events, want %d", n, want.Len())
	}
}

func objectStore(t testing.TB, js jetstream.JetStream, name string) jetstream.ObjectStore {
	t.Helper()
	s, err := js.ObjectStore(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readStream reads every message of stream in order with an ordered
// consumer: far faster than a get per message for a large stream.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []*nats.Msg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.Msg
	for {
		batch, err := oc.Fetch(4096, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			out = append(out, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			if meta.Sequence.Stream >= info.State.LastSeq {
				return out
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("stream %s: nothing read after %d messages of %d", stream, len(out), info.State.Msgs)
		}
	}
}

// A resync of an export with memberships that are not whole carries them
// marked as the normal delivery does (the same checksum) and the export's
// findings on both boundaries, for a profile with guardians and one without.
func TestResyncCarriesTheFindings(t *testing.T) {
	w := &world{b: bustest.Open(t), docs: map[string][][]byte{tenantA: findingsExports(t, tenantA)}}
	roster, _ := projection.ParseProfile()
	all, _ := projection.ParseProfile(projection.PartNames()...)
	w.vendors = []fanout.Vendor{{Name: "roster", Tenants: []string{tenantA}, Profile: roster},
		{Name: "everything", Tenants: []string{tenantA}, Profile: all}}
	w.provision(t)
	// Joined at the first export: the canonical checksum the join takes
	// from the export object (its memberships marked) is the one the
	// second export's changes start from.
	w.publishSettled(t, tenantA, 0)
	w.run(t, fanout.Config{})
	for _, v := range w.vendors {
		w.waitDeliveries(t, v.Name, tenantA, 1)
	}
	w.publishSettled(t, tenantA, 1)
	res := w.changes(t, tenantA, 1, func(diff.Change) {})
	want := map[string]int{messages.FindingDanglingMembership: res.Findings.DanglingMemberships,
		messages.FindingGroupMember: res.Findings.GroupMembers}
	if res.Findings.DanglingMemberships == 0 || res.Findings.GroupMembers == 0 {
		t.Fatalf("findings %+v: the test would prove nothing", res.Findings)
	}
	for _, v := range w.vendors {
		normal := w.waitDeliveries(t, v.Name, tenantA, 2)[1]
		r := request(t, w.vendorConn(t, v.Name), v.Name, tenantA, "")
		if !r.Accepted {
			t.Fatal(r)
		}
		got := w.waitDeliveries(t, v.Name, tenantA, 3)[2]
		if !got.resync || normal.resync || got.checksum != normal.checksum || got.records != normal.records {
			t.Errorf("%s: resync %+v, normal delivery %+v", v.Name, got, normal)
		}
		for _, m := range readStream(t, w.b.JS, bus.VendorStream(v.Name)) {
			if !strings.Contains(m.Subject, ".export.") {
				continue
			}
			b, err := messages.Decode[messages.Boundary](m)
			if err != nil {
				t.Fatal(err)
			}
			if b.Resync && b.ExportID == exportID(tenantA, 1) && !maps.Equal(b.Findings, want) {
				t.Errorf("%s: resync export.%s: findings %v, want %v", v.Name, b.Phase, b.Findings, want)
			}
		}
	}
	if n := w.mismatches(); n != 0 {
		t.Errorf("%d checksum mismatches", n)
	}
}
