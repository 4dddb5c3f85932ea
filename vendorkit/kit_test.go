package vendorkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/vendortest"
	"github.com/skolebuss/skolebuss/internal/waitfor"
	"github.com/skolebuss/skolebuss/vendorkit"
)

const (
	vendor  = "acme"
	tenantA = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	tenantB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

// world is a server with the vendor's real user, its stream, and the
// administrator's connection that publishes the feed.
type world struct {
	s    *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	feed *vendortest.Feed
}

func newWorld(t *testing.T, opts ...bustest.Option) *world { return newWorldB(t, opts...) }

func newWorldB(t testing.TB, opts ...bustest.Option) *world {
	t.Helper()
	s := bustest.RunServer(t, append([]bustest.Option{vendortest.Users(vendor)}, opts...)...)
	nc, js := bustest.Connect(t, s, append(vendortest.AdminOptions(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err := vendortest.ProvisionStream(context.Background(), js, vendor); err != nil {
		t.Fatal(err)
	}
	return &world{s: s, nc: nc, js: js, feed: vendortest.NewFeed(vendor, 1)}
}

func (w *world) export(t testing.TB, tenant string, o vendortest.ExportOptions) {
	t.Helper()
	if _, err := w.feed.Export(context.Background(), w.js, tenant, o); err != nil {
		t.Fatal(err)
	}
}

// recorder is a MemoryStore that checks that every event it is given comes
// after every event it applied before, and notes the checks.
type recorder struct {
	*vendorkit.MemoryStore
	mu       sync.Mutex
	last     uint64
	disorder []string
	checks   []vendorkit.ExportCheck
	onApply  func(last uint64)
}

func newRecorder() *recorder { return &recorder{MemoryStore: vendorkit.NewMemoryStore()} }

func (r *recorder) Apply(ctx context.Context, events []vendorkit.Event) error {
	r.mu.Lock()
	for _, ev := range events {
		if ev.Seq <= r.last {
			r.disorder = append(r.disorder, fmt.Sprintf("event %d applied after %d", ev.Seq, r.last))
		}
		r.last = ev.Seq
	}
	hook := r.onApply
	r.mu.Unlock()
	if err := r.MemoryStore.Apply(ctx, events); err != nil {
		return err
	}
	if hook != nil {
		hook(events[len(events)-1].Seq)
	}
	return nil
}

func (r *recorder) onExport(c vendorkit.ExportCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, c)
}

// checked returns the last check of tenant's export, if any.
func (r *recorder) checked(tenant, exportID string) (vendorkit.ExportCheck, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.checks) - 1; i >= 0; i-- {
		if c := r.checks[i]; c.Tenant == tenant && c.ExportID == exportID {
			return c, true
		}
	}
	return vendorkit.ExportCheck{}, false
}

// runKit runs a kit as the vendor on store until the test ends or stop is
// called.
func runKit(t *testing.T, w *world, store *recorder, cfg vendorkit.Config) (*vendorkit.Kit, func()) {
	t.Helper()
	return runKitCtx(t, context.Background(), w, store, cfg)
}

// runKitCtx is runKit under ctx: cancelling it stops the kit too.
func runKitCtx(t *testing.T, parent context.Context, w *world, store *recorder, cfg vendorkit.Config) (*vendorkit.Kit, func()) {
	t.Helper()
	nc, err := vendorkit.Connect(w.s.ClientURL(), vendor, append(vendortest.VendorOptions(vendor), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vendor, cfg.OnExport = vendor, store.onExport
	if cfg.RetryWait == 0 {
		cfg.RetryWait = 50 * time.Millisecond
	}
	kit, err := vendorkit.New(nc, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- kit.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			nc.Close()
		})
	}
	t.Cleanup(stop)
	return kit, stop
}

// waitMatched waits until tenant's export exportID was checked and matched,
// and the store holds exactly the feed's records of tenant.
func waitMatched(t *testing.T, w *world, store *recorder, tenant, exportID string, within time.Duration) {
	t.Helper()
	waitChecked(t, store, tenant, exportID, within)
	sameRecords(t, w.feed.Records(tenant), store.Records(tenant))
}

// waitChecked waits until tenant's export exportID was checked and matched.
func waitChecked(t *testing.T, store *recorder, tenant, exportID string, within time.Duration) {
	t.Helper()
	waitfor.Condition(t, within, func() error {
		c, ok := store.checked(tenant, exportID)
		switch {
		case !ok:
			return fmt.Errorf("export %s of %s not checked yet", exportID, tenant)
		case c.Mismatch != "":
			return fmt.Errorf("export %s of %s: %s", exportID, tenant, c.Mismatch)
		}
		return nil
	})
}

func sameRecords(t *testing.T, want map[string]map[string][]byte, got map[string]map[string]json.RawMessage) {
	t.Helper()
	for _, e := range vendorkit.Entities {
		if len(got[e]) != len(want[e]) {
			t.Fatalf("%d %s records, want %d", len(got[e]), e, len(want[e]))
		}
		for k, obj := range want[e] {
			if !bytes.Equal(got[e][k], obj) {
				t.Fatalf("%s %s: %s, want %s", e, k, got[e][k], obj)
			}
		}
	}
}

func TestKitAppliesChecksAndUnlinks(t *testing.T) {
	w := newWorld(t)
	for range 3 {
		w.export(t, tenantA, vendortest.ExportOptions{Size: 2000})
		w.export(t, tenantB, vendortest.ExportOptions{Size: 500})
	}
	store := newRecorder()
	kit, _ := runKit(t, w, store, vendorkit.Config{BatchSize: 300})
	waitMatched(t, w, store, tenantA, "export-2", 60*time.Second)
	waitMatched(t, w, store, tenantB, "export-2", 60*time.Second)
	store.mu.Lock()
	for _, c := range store.checks {
		if c.Mismatch != "" {
			t.Errorf("export %s of %s: %s", c.ExportID, c.Tenant, c.Mismatch)
		}
	}
	store.mu.Unlock()
	st, _ := kit.Status(tenantA)
	if st.LastExport != "export-2" || st.Mismatch != "" || st.Applied < 2000 || st.ResyncPending {
		t.Errorf("status of A: %+v", st)
	}

	if err := w.feed.Unlink(context.Background(), w.js, tenantB); err != nil {
		t.Fatal(err)
	}
	w.export(t, tenantA, vendortest.ExportOptions{})
	waitMatched(t, w, store, tenantA, "export-3", 60*time.Second)
	if recs := store.Records(tenantB); len(recs[vendorkit.EntityPerson]) != 0 {
		t.Errorf("tenant B unlinked, and the store still holds %d persons of it", len(recs[vendorkit.EntityPerson]))
	}
	if st, _ := kit.Status(tenantB); !st.Unlinked {
		t.Errorf("status of B after tenant.unlinked: %+v", st)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.disorder) > 0 {
		t.Errorf("out of order: %v", store.disorder)
	}
}

func TestKitAsksForAResyncWhenTheStoreDiffers(t *testing.T) {
	w := newWorld(t)
	// skolebuss's side: every resync request is answered accepted, and the
	// resync published.
	type request struct {
		subject string
		body    []byte
	}
	requests := make(chan request, 10)
	sub, err := w.nc.Subscribe("vendorreq."+vendor+".resync.*", func(m *nats.Msg) {
		requests <- request{m.Subject, m.Data}
		_ = m.Respond([]byte(`{"accepted":true,"resync_id":"r1"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	w.export(t, tenantA, vendortest.ExportOptions{Size: 800})
	w.export(t, tenantA, vendortest.ExportOptions{Lose: 7})
	store := newRecorder()
	kit, _ := runKit(t, w, store, vendorkit.Config{ResyncRetry: time.Minute})
	waitChecked(t, store, tenantA, "export-0", 60*time.Second)

	var req request
	select {
	case req = <-requests:
	case <-time.After(60 * time.Second):
		t.Fatal("no resync request after export-1 lost a change")
	}
	if req.subject != "vendorreq."+vendor+".resync."+tenantA {
		t.Errorf("resync requested on %s", req.subject)
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil || body.Reason == "" || len(body.Reason) > vendorkit.MaxResyncReason {
		t.Errorf("request body %s: %v", req.body, err)
	}
	if c, _ := store.checked(tenantA, "export-1"); c.Mismatch == "" {
		t.Error("export-1 lost a change, and its check found no difference")
	}
	waitfor.Condition(t, 60*time.Second, func() error {
		if st, _ := kit.Status(tenantA); st.ResyncID != "r1" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if err := w.feed.Resync(context.Background(), w.js, tenantA); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 60*time.Second, func() error {
		c, ok := store.checked(tenantA, "export-1")
		if !ok || !c.Resync || c.Mismatch != "" {
			return fmt.Errorf("resync of export-1 not checked and matched: %+v", c)
		}
		return nil
	})
	sameRecords(t, w.feed.Records(tenantA), store.Records(tenantA))
	if st, _ := kit.Status(tenantA); st.ResyncID != "" || st.ResyncPending || st.Mismatch != "" {
		t.Errorf("status after the resync: %+v", st)
	}
	select {
	case r := <-requests:
		t.Errorf("a second resync request: %s %s", r.subject, r.body)
	default:
	}

	// A vendor asks by itself: the answer comes back as it was sent.
	rep, err := kit.RequestResync(context.Background(), tenantA, "restored a backup")
	if err != nil || !rep.Accepted || rep.ResyncID != "r1" {
		t.Errorf("RequestResync: %+v, %v", rep, err)
	}
}

func TestKitResumesFromTheStoresPosition(t *testing.T) {
	w := newWorld(t)
	w.export(t, tenantA, vendortest.ExportOptions{Size: 3000})
	store := newRecorder()
	// Stopped part-way (from its store, so that it stops there however
	// slowly the test runs), the kit leaves the store at an earlier
	// position...
	ctx, cancel := context.WithCancel(context.Background())
	store.onApply = func(last uint64) {
		if last > 1000 {
			cancel()
		}
	}
	_, stop := runKitCtx(t, ctx, w, store, vendorkit.Config{BatchSize: 100})
	<-ctx.Done()
	stop()
	store.mu.Lock()
	store.onApply = nil
	store.mu.Unlock()
	pos, _ := store.Position(context.Background())
	if pos >= 3002 {
		t.Fatalf("the kit applied everything (%d) before it was stopped", pos)
	}
	// ... and a new one goes on from there, applying nothing twice. Every
	// name the consumer takes is left by an earlier run, the new one
	// deletes them.
	ctx = context.Background()
	for _, name := range []string{"vendorkit-1", "vendorkit-2"} {
		if _, err := w.js.CreateConsumer(ctx, "VENDOR_"+vendor, jetstream.ConsumerConfig{Durable: name}); err != nil {
			t.Fatal(err)
		}
	}
	w.export(t, tenantA, vendortest.ExportOptions{})
	runKit(t, w, store, vendorkit.Config{})
	waitMatched(t, w, store, tenantA, "export-1", 60*time.Second)
	if len(store.disorder) > 0 {
		t.Errorf("out of order: %v", store.disorder)
	}
	stream, err := w.js.Stream(ctx, "VENDOR_"+vendor)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range stream.ConsumerNames(ctx).Name() {
		names = append(names, name)
	}
	if len(names) != 1 {
		t.Errorf("consumers of the stream: %v, want the kit's one", names)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  vendorkit.Config
		want string
	}{
		{vendorkit.Config{}, "vendor"},
		{vendorkit.Config{Vendor: "a.b"}, "vendor"},
		{vendorkit.Config{Vendor: "a", Consumer: "x y"}, "consumer"},
		{vendorkit.Config{Vendor: "a", BatchSize: -1}, "batch size"},
		{vendorkit.Config{Vendor: "a", BatchSize: 100, MaxAckPending: 10}, "max ack pending"},
		{vendorkit.Config{Vendor: "a", AckWait: time.Millisecond}, "ack wait"},
	} {
		err := c.cfg.Validate()
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
	}
	if err := (vendorkit.Config{Vendor: "acme"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// failing is a recorder whose every fifth Apply fails, applying nothing.
type failing struct {
	*recorder
	mu    sync.Mutex
	calls int
}

func (f *failing) Apply(ctx context.Context, events []vendorkit.Event) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls%5 == 0
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("disk full (call %d)", f.calls)
	}
	return f.recorder.Apply(ctx, events)
}

func TestKitReadsAgainAfterAStoreError(t *testing.T) {
	w := newWorld(t)
	w.export(t, tenantA, vendortest.ExportOptions{Size: 3000})
	w.export(t, tenantA, vendortest.ExportOptions{})
	rec := newRecorder()
	store := &failing{recorder: rec}
	nc, err := vendorkit.Connect(w.s.ClientURL(), vendor, vendortest.VendorOptions(vendor)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kit, err := vendorkit.New(nc, store, vendorkit.Config{Vendor: vendor, BatchSize: 200, RetryWait: 20 * time.Millisecond,
		OnExport: rec.onExport})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- kit.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitMatched(t, w, rec, tenantA, "export-1", 60*time.Second)
	store.mu.Lock()
	calls := store.calls
	store.mu.Unlock()
	if calls < 10 {
		t.Errorf("only %d calls of Apply: the store's errors were not exercised", calls)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.disorder) > 0 {
		t.Errorf("out of order: %v", rec.disorder)
	}
}
