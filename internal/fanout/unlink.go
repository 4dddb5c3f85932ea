package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
)

// unlinked lists the tenants vendor v has state of in the object store
// "fanout" but that its configuration no longer links to it, sorted.
func (f *Fanout) unlinked(ctx context.Context, v Vendor) ([]string, error) {
	objs, err := f.deps.Store.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fanout: list the fan-out state: %w", err)
	}
	var out []string
	for _, o := range objs {
		t, ok := strings.CutPrefix(o.Name, v.Name+".")
		if ok && !strings.Contains(t, ".") && !slices.Contains(v.Tenants, t) { // not a pending resync
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// unlink ends the flow of tenant to vendor v, whose consumer no longer
// delivers the tenant's exports: it publishes one TenantUnlinked on the
// vendor's stream, then removes what the vendor held of the tenant from
// the object store "fanout". Its id is a hash of vendor, tenant and the
// last export delivered, and it is not published again when it is already
// the last message of its subject, so a redo after a crash between the two
// steps stores it once.
func (f *Fanout) unlink(ctx context.Context, v Vendor, tenant string) error {
	st, err := loadState(ctx, f.deps.Store, v.Name, tenant)
	if err != nil {
		return err
	}
	u := messages.TenantUnlinked{ID: messages.UnlinkedID(v.Name, tenant, st.ExportID), Vendor: v.Name, Tenant: tenant,
		Time: time.Now().UTC()}
	m, err := messages.Encode(u)
	if err != nil {
		return err
	}
	js, err := jetstream.New(f.deps.Conn)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, bus.VendorStream(v.Name))
	if err != nil {
		return fmt.Errorf("fanout: stream of vendor %s: %w", v.Name, err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, m.Subject)
	switch {
	case err == nil && last.Header.Get(messages.HeaderMsgID) == u.ID:
		// Published before a crash: only the state is left to remove.
	case err == nil, errors.Is(err, jetstream.ErrMsgNotFound):
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("fanout: publish the unlinking of %s from vendor %s: %w", tenant, v.Name, err)
		}
	default:
		return fmt.Errorf("fanout: read the last unlinking of %s from vendor %s: %w", tenant, v.Name, err)
	}
	if err := f.dropPending(ctx, v.Name, tenant); err != nil {
		return err
	}
	if err := f.deps.Store.Delete(ctx, stateName(v.Name, tenant)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("fanout: remove the fan-out state of %s: %w", stateName(v.Name, tenant), err)
	}
	f.deps.Logger.Info("fan-out: tenant unlinked", "vendor", v.Name, "tenant", tenant, "last_export_id", st.ExportID)
	return nil
}
