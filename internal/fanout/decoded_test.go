package fanout_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// addTwins adds to the world (with their streams) a twin of each named
// vendor: the same tenants and profile, under the name with suffix added.
func (w *world) addTwins(t *testing.T, suffix string, of ...string) []fanout.Vendor {
	t.Helper()
	var out []fanout.Vendor
	var names []string
	for _, v := range w.vendors {
		for _, name := range of {
			if v.Name == name {
				v.Name += suffix
				out, names = append(out, v), append(names, v.Name)
			}
		}
	}
	if _, err := bus.ProvisionVendors(context.Background(), w.b.JS, bus.ProvisionConfig{}, names); err != nil {
		t.Fatal(err)
	}
	w.vendors = append(w.vendors, out...)
	return out
}

// sameDelivery checks that vendors a and b received the same messages:
// the same bodies and headers in the same order, on their own subjects,
// under ids of their own.
func (w *world) sameDelivery(t *testing.T, a, b string) {
	t.Helper()
	ma := bustest.Msgs(t, w.b.JS, bus.VendorStream(a))
	mb := bustest.Msgs(t, w.b.JS, bus.VendorStream(b))
	if len(ma) != len(mb) || len(ma) == 0 {
		t.Fatalf("%s has %d messages, %s %d", a, len(ma), b, len(mb))
	}
	for i := range ma {
		x, y := ma[i], mb[i]
		if strings.Replace(x.Subject, "vendor."+a+".", "vendor."+b+".", 1) != y.Subject || string(x.Data) != string(y.Data) {
			t.Fatalf("message %d: %s %s\nand %s %s", i, x.Subject, x.Data, y.Subject, y.Data)
		}
		hx, hy := maps.Clone(x.Header), maps.Clone(y.Header)
		for _, h := range []string{messages.HeaderID, messages.HeaderMsgID} {
			if hx.Get(h) == hy.Get(h) || hx.Get(h) == "" {
				t.Fatalf("message %d: %s %q of both %s and %s", i, h, hx.Get(h), a, b)
			}
			delete(hx, h)
			delete(hy, h)
		}
		if fmt.Sprint(hx) != fmt.Sprint(hy) {
			t.Fatalf("message %d: headers\n%v\nand\n%v", i, hx, hy)
		}
	}
}

// Vendors that share one decoded export (and vendors alike one count of
// it) receive what vendors that each read the stream themselves receive,
// and the export leaves memory once every vendor of its tenant has it.
func TestSharedExportDeliversAsSeparateReads(t *testing.T) {
	w := newWorld(t)
	shared := append(append([]fanout.Vendor(nil), w.vendors...), w.addTwins(t, "-twin", "roster-a", "guardians-b")...)
	alone := w.addTwins(t, "-alone", "roster-a", "contact-ab", "guardians-b")
	w.run(t, fanout.Config{Vendors: shared})
	w.run(t, fanout.Config{Vendors: alone, CacheEvents: -1})
	w.waitDelivered(t)
	w.verify(t)
	for _, pair := range [][2]string{{"roster-a", "roster-a-alone"}, {"contact-ab", "contact-ab-alone"},
		{"guardians-b", "guardians-b-alone"}, {"roster-a", "roster-a-twin"}, {"guardians-b", "guardians-b-twin"}} {
		w.sameDelivery(t, pair[0], pair[1])
	}
	w.waitReleased(t, w.stages[0])
	if n := w.stages[0].Together(); n < 2 {
		t.Errorf("%d vendor exports published together; the twins never were", n)
	}
	if n := w.stages[1].Together(); n != 0 {
		t.Errorf("%d vendor exports published together from the stream", n)
	}
	if n := w.stages[1].Holding(); n != 0 {
		t.Errorf("a stage that may hold nothing holds %d change events", n)
	}
}

// canonicalSizes are the change events of each canonical export in the
// LMS stream, in stream order.
func (w *world) canonicalSizes(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, m := range bustest.Msgs(t, w.b.JS, bus.StreamLMS) {
		if !strings.HasSuffix(m.Subject, ".export.completed") {
			continue
		}
		b, err := messages.Decode[messages.Boundary](bustest.NATSMsg(m))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range b.Counts {
			n += c.Created + c.Updated + c.Deleted
		}
		out = append(out, n)
	}
	return out
}

// With room for the later exports but not the first ones, the stage holds
// no more change events than its limit at any time, reads the first
// exports from the stream for each vendor, and delivers the same.
func TestCacheLimit(t *testing.T) {
	w := newWorld(t)
	sizes := w.canonicalSizes(t) // generation 0 of A and B, then 1 and 2
	limit := max(sizes[2], sizes[3], sizes[4], sizes[5])
	if limit >= min(sizes[0], sizes[1]) {
		t.Fatalf("export sizes %v: a later export as large as a first one", sizes)
	}
	stop := w.run(t, fanout.Config{CacheEvents: limit})
	f := w.stages[0]
	var most atomic.Int64
	quit, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(f.Holding()); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond): // sampling, not waiting for an outcome
			}
		}
	}()
	w.waitDelivered(t)
	w.waitReleased(t, f)
	close(quit)
	<-sampled
	stop()
	w.verify(t)
	if n := most.Load(); n > int64(limit) {
		t.Errorf("held at most %d change events, the limit is %d", n, limit)
	}
	if f.Decoded() == 0 {
		t.Error("no export read into memory, yet the later exports fit")
	}
}

// waitReleased waits until f holds no change event.
func (w *world) waitReleased(t *testing.T, f *fanout.Fanout) {
	t.Helper()
	waitfor.Condition(t, 10*time.Second, func() error {
		if n := f.Holding(); n != 0 {
			return fmt.Errorf("%d change events held after every vendor has every export", n)
		}
		return nil
	})
}

// A vendor whose stream refuses writes fails alone: the vendor it publishes
// together with gets every export meanwhile, and the failing one gets them
// once its stream has room again.
func TestOneVendorOfAGroupFails(t *testing.T) {
	w := newWorld(t)
	twin := w.addTwins(t, "-twin", "contact-ab")[0]
	ctx := context.Background()
	s, err := w.b.JS.Stream(ctx, bus.VendorStream("contact-ab"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full := info.Config
	limited := full
	limited.MaxMsgs, limited.Discard = 40, jetstream.DiscardNew
	if _, err := w.b.JS.UpdateStream(ctx, limited); err != nil {
		t.Fatal(err)
	}
	w.run(t, fanout.Config{})
	w.waitCompleted(t, twin.Name, 6)
	if n := w.completed(t, "contact-ab"); n != 0 {
		t.Fatalf("contact-ab has %d exports in a stream of 40 messages", n)
	}
	if _, err := w.b.JS.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(t)
	w.verify(t)
	if n := w.stages[0].Together(); n < 2 {
		t.Errorf("%d vendor exports published together; the twins never were", n)
	}
}
