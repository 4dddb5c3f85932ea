package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// vendorMsgs are the messages of vendor's stream whose subject is of
// tenant, in order.
func (w *world) vendorMsgs(t *testing.T, vendor, tenant string) []*jetstream.RawStreamMsg {
	t.Helper()
	var out []*jetstream.RawStreamMsg
	for _, m := range bustest.Msgs(t, w.b.JS, bus.VendorStream(vendor)) {
		if strings.HasPrefix(m.Subject, "vendor."+vendor+"."+tenant+".") {
			out = append(out, m)
		}
	}
	return out
}

// unlinkedEvents are the tenant.unlinked events in vendor's stream.
func (w *world) unlinkedEvents(t *testing.T, vendor string) []messages.TenantUnlinked {
	t.Helper()
	var out []messages.TenantUnlinked
	for _, m := range bustest.Msgs(t, w.b.JS, bus.VendorStream(vendor)) {
		if !strings.HasSuffix(m.Subject, ".tenant.unlinked") {
			continue
		}
		u, err := messages.Decode[messages.TenantUnlinked](bustest.NATSMsg(m))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := messages.VendorUnlinkedSubject(vendor, u.Tenant); m.Subject != want || u.Vendor != vendor {
			t.Fatalf("%s: tenant.unlinked of %s %s on %s", vendor, u.Vendor, u.Tenant, m.Subject)
		}
		out = append(out, u)
	}
	return out
}

// waitCompleted waits until vendor's stream holds n export.completed.
func (w *world) waitCompleted(t *testing.T, vendor string, n int) {
	t.Helper()
	waitfor.Condition(t, 60*time.Second, func() error {
		if got := w.completed(t, vendor); got != n {
			return fmt.Errorf("vendor %s: %d exports delivered, want %d", vendor, got, n)
		}
		return nil
	})
}

// A vendor whose configuration stops linking a tenant gets one
// tenant.unlinked for it when the fan-out starts, and nothing more of that
// tenant; its other tenant keeps flowing, and later starts, a redo after a
// crash between the event and the state's removal included, add no second
// tenant.unlinked.
func TestUnlinkedTenantStopsFlowing(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	const vendor = "contact-ab"
	stop := w.run(t, fanout.Config{})
	w.waitDelivered(t)
	stop()
	stateB := vendor + "." + tenantB
	saved, err := w.store.GetBytes(ctx, stateB)
	if err != nil {
		t.Fatal(err)
	}

	for i, v := range w.vendors {
		if v.Name == vendor {
			w.vendors[i].Tenants = []string{tenantA}
		}
	}
	stop = w.run(t, fanout.Config{})
	waitfor.Condition(t, 10*time.Second, func() error {
		if _, err := w.store.GetInfo(ctx, stateB); !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("the state of %s is still there: %v", stateB, err)
		}
		return nil
	})
	un := w.unlinkedEvents(t, vendor)
	if len(un) != 1 || un[0].Tenant != tenantB || un[0].ID != messages.UnlinkedID(vendor, tenantB, exportID(tenantB, 2)) {
		t.Fatalf("tenant.unlinked events %+v, want one of %s after %s", un, tenantB, exportID(tenantB, 2))
	}
	if msgs := w.vendorMsgs(t, vendor, tenantB); !strings.HasSuffix(msgs[len(msgs)-1].Subject, ".tenant.unlinked") {
		t.Fatalf("the last event of %s is %s, not its tenant.unlinked", tenantB, msgs[len(msgs)-1].Subject)
	}
	for _, v := range w.vendors {
		if n := len(w.unlinkedEvents(t, v.Name)); v.Name != vendor && n != 0 {
			t.Errorf("%s: %d tenant.unlinked, its tenants did not change", v.Name, n)
		}
	}
	// The consumer's filter is the tenant still linked, not the old one.
	cons, err := w.b.JS.Consumer(ctx, bus.StreamLMS, fanout.ConsumerName(vendor))
	if err != nil {
		t.Fatal(err)
	}
	wantFilter, _ := messages.BoundarySubject(tenantA, messages.PhaseCompleted)
	if f := cons.CachedInfo().Config.FilterSubjects; !slices.Equal(f, []string{wantFilter}) {
		t.Errorf("consumer filter %v, want %v", f, []string{wantFilter})
	}

	// A later export of B reaches its other vendor but not this one; one of
	// A, published after it, does.
	beforeB := len(w.vendorMsgs(t, vendor, tenantB))
	w.publishExport(t, tenantB, 3)
	w.publishExport(t, tenantA, 3)
	w.waitCompleted(t, "guardians-b", 4)
	w.waitCompleted(t, "roster-a", 4)
	w.waitCompleted(t, vendor, 7) // three of B before, four of A
	if n := len(w.vendorMsgs(t, vendor, tenantB)); n != beforeB {
		t.Errorf("%d messages of %s after its unlinking, %d before", n, tenantB, beforeB)
	}
	stop()

	// A second start unlinks nothing more; the next export of A shows it
	// is past its start.
	stop = w.run(t, fanout.Config{})
	w.publishExport(t, tenantA, 4)
	w.waitCompleted(t, vendor, 8)
	stop()
	if un := w.unlinkedEvents(t, vendor); len(un) != 1 {
		t.Fatalf("%d tenant.unlinked after a second start, want 1", len(un))
	}

	// Killed after the event and before the state was removed: the redo
	// removes the state and publishes nothing.
	if _, err := w.store.PutBytes(ctx, stateB, saved); err != nil {
		t.Fatal(err)
	}
	stop = w.run(t, fanout.Config{})
	waitfor.Condition(t, 10*time.Second, func() error {
		if _, err := w.store.GetInfo(ctx, stateB); !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("the state of %s is still there: %v", stateB, err)
		}
		return nil
	})
	stop()
	if un := w.unlinkedEvents(t, vendor); len(un) != 1 {
		t.Fatalf("%d tenant.unlinked after a redo, want 1", len(un))
	}
	if n := len(w.vendorMsgs(t, vendor, tenantB)); n != beforeB {
		t.Errorf("%d messages of %s after the redo, %d before", n, tenantB, beforeB)
	}
}
