package fanout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// Why a resync is refused.
var (
	ErrUnknownVendor = errors.New("no such vendor in the fan-out's configuration")
	ErrNotLinked     = errors.New("the tenant is not linked to the vendor")
	ErrNoState       = errors.New("the tenant has no exported state yet")
)

// InboxPrefix is the inbox prefix of vendor's clients, the only one its
// NATS user may receive on (natsauth.InboxPrefix, which a test holds equal):
// a resync request is answered only on a reply subject below it.
func InboxPrefix(vendor string) string { return "_INBOX_" + vendor }

// QueueGroup is the queue group the fan-outs answer resync requests in: one
// of them answers each request.
const QueueGroup = "fanout"

// pending is a resync waiting to be done, stored in the object store
// "fanout" as <vendor>.<tenant>.resync.<id> before the request is answered.
// Ids sort by the time they were made.
type pending struct {
	ID          string    `json:"id"`
	Vendor      string    `json:"vendor"`
	Tenant      string    `json:"tenant"`
	Reason      string    `json:"reason,omitempty"`
	Join        bool      `json:"join,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
}

const resyncInfix = ".resync."

func pendingName(vendor, tenant, id string) string {
	return stateName(vendor, tenant) + resyncInfix + id
}

// newResyncID is a resync id: the UTC time to the nanosecond and 4 random
// bytes, so ids sort by time and two are never the same.
func newResyncID(now time.Time) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(r[:])
}

func (f *Fanout) vendor(name string) (Vendor, bool) {
	for _, v := range f.cfg.Vendors {
		if v.Name == name {
			return v, true
		}
	}
	return Vendor{}, false
}

// Request asks for a resync of tenant to vendor: it checks that the vendor
// is configured, the tenant linked to it and exported, stores the resync
// to be done, and returns its id. The vendor's loop in a running fan-out
// does it between two exports (one started later does it at its start).
// The errors ErrUnknownVendor, ErrNotLinked and ErrNoState say why a
// resync is refused.
func (f *Fanout) Request(ctx context.Context, vendor, tenant, reason string) (string, error) {
	if err := (messages.ResyncRequest{Reason: reason}).Validate(); err != nil {
		return "", err
	}
	v, ok := f.vendor(vendor)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownVendor, vendor)
	}
	if !slices.Contains(v.Tenants, tenant) {
		return "", fmt.Errorf("%w: tenant %s, vendor %s", ErrNotLinked, tenant, vendor)
	}
	if _, err := f.deps.Snapshots.GetInfo(ctx, tenant); errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("%w: tenant %s", ErrNoState, tenant)
	} else if err != nil {
		return "", fmt.Errorf("read the snapshot of %s: %w", tenant, err)
	}
	p := pending{ID: newResyncID(time.Now()), Vendor: vendor, Tenant: tenant, Reason: reason, RequestedAt: time.Now().UTC()}
	return p.ID, f.storePending(ctx, p)
}

func (f *Fanout) storePending(ctx context.Context, p pending) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := f.deps.Store.PutBytes(ctx, pendingName(p.Vendor, p.Tenant, p.ID), b); err != nil {
		return fmt.Errorf("store the resync %s of %s for vendor %s: %w", p.ID, p.Tenant, p.Vendor, err)
	}
	return nil
}

// pendingOf lists vendor's pending resyncs: per tenant, the object names,
// oldest first.
func (f *Fanout) pendingOf(ctx context.Context, vendor string) (map[string][]string, error) {
	out := map[string][]string{}
	objs, err := f.deps.Store.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the fan-out's store: %w", err)
	}
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Name, vendor+".")
		if !ok {
			continue
		}
		if tenant, _, ok := strings.Cut(rest, resyncInfix); ok {
			out[tenant] = append(out[tenant], o.Name)
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
}

// resyncs does vendor v's pending resyncs, one per tenant however many
// were asked (with the oldest one's id), tenant by tenant, each removed
// once done. A pending resync of a tenant no longer linked is dropped.
func (f *Fanout) resyncs(ctx context.Context, v Vendor) error {
	all, err := f.pendingOf(ctx, v.Name)
	if err != nil || len(all) == 0 {
		return err
	}
	tenants := make([]string, 0, len(all))
	for t := range all {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		names := all[t]
		if slices.Contains(v.Tenants, t) {
			id := strings.TrimPrefix(names[0], pendingName(v.Name, t, ""))
			start := time.Now()
			if err := f.resync(ctx, v, t, id); err != nil {
				return fmt.Errorf("resync %s of %s: %w", id, t, err)
			}
			f.deps.Logger.Info("fan-out: tenant resynced", "vendor", v.Name, "tenant", t, "resync_id", id,
				"requests", len(names), "duration", time.Since(start))
		}
		for _, n := range names {
			if err := f.deps.Store.Delete(ctx, n); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return fmt.Errorf("remove the resync %s: %w", n, err)
			}
		}
	}
	return nil
}

// joins stores a resync of every tenant linked to v that has exported
// state but of which v has none (a new vendor, a newly linked tenant):
// such a tenant gets its whole current state, not the LMS stream's history.
// A tenant without a snapshot gets its first export as it comes.
func (f *Fanout) joins(ctx context.Context, v Vendor) error {
	all, err := f.pendingOf(ctx, v.Name)
	if err != nil {
		return err
	}
	for _, t := range v.Tenants {
		if err := f.join(ctx, v, t, all); err != nil {
			return err
		}
	}
	return nil
}

// join stores a resync of tenant for v if v has no state of it, none is
// pending (all: v's pending resyncs, nil to look them up) and the tenant
// has a snapshot.
func (f *Fanout) join(ctx context.Context, v Vendor, tenant string, all map[string][]string) error {
	if ok, err := f.hasState(ctx, v.Name, tenant); err != nil || ok {
		return err
	}
	if all == nil {
		var err error
		if all, err = f.pendingOf(ctx, v.Name); err != nil {
			return err
		}
	}
	if len(all[tenant]) > 0 {
		return nil
	}
	if _, err := f.deps.Snapshots.GetInfo(ctx, tenant); errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read the snapshot of %s: %w", tenant, err)
	}
	now := time.Now()
	return f.storePending(ctx, pending{ID: newResyncID(now), Vendor: v.Name, Tenant: tenant, Join: true,
		RequestedAt: now.UTC()})
}

// joinBefore is called with an export in hand (its export.completed b)
// before it is delivered: when v has no state of its tenant and the export
// does not start from an empty state (it has records unchanged, updated or
// deleted), v gets a resync first, and the export, no newer than the
// state resynced, is then skipped. A tenant's first export is delivered as
// it is.
func (f *Fanout) joinBefore(ctx context.Context, v Vendor, b messages.Boundary) error {
	for _, c := range b.Counts {
		if c.Unchanged > 0 || c.Updated > 0 || c.Deleted > 0 {
			if err := f.join(ctx, v, b.Tenant, nil); err != nil {
				return err
			}
			return f.resyncs(ctx, v)
		}
	}
	return nil
}

func (f *Fanout) hasState(ctx context.Context, vendor, tenant string) (bool, error) {
	_, err := f.deps.Store.GetInfo(ctx, stateName(vendor, tenant))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the fan-out state of %s: %w", stateName(vendor, tenant), err)
	}
	return true, nil
}

// serve answers resync requests in the queue group QueueGroup until ctx
// ends.
func (f *Fanout) serve(ctx context.Context) (*nats.Subscription, error) {
	return f.deps.Conn.QueueSubscribe(messages.ResyncRequestFilter, QueueGroup, func(m *nats.Msg) {
		f.answer(ctx, m)
	})
}

// answer answers one resync request. The vendor is the one of the subject.
// A reply subject outside that vendor's inbox prefix gets no answer: the
// answer would go to someone else.
func (f *Fanout) answer(ctx context.Context, m *nats.Msg) {
	vendor, tenant, err := messages.ParseResyncRequestSubject(m.Subject)
	if err != nil {
		f.deps.Logger.Warn("fan-out: resync request on a bad subject; not answered", "err", err)
		return
	}
	log := f.deps.Logger.With("vendor", vendor, "tenant", tenant)
	if !strings.HasPrefix(m.Reply, InboxPrefix(vendor)+".") {
		log.Warn("fan-out: resync request with a reply subject outside the vendor's inbox; not answered")
		return
	}
	reply := func(r messages.ResyncReply) {
		b, err := json.Marshal(r)
		if err == nil {
			err = m.Respond(b)
		}
		if err != nil {
			log.Warn("fan-out: answer a resync request", "err", err)
		}
	}
	req, err := messages.ParseResyncRequest(m.Data)
	if err != nil {
		log.Info("fan-out: resync request refused", "err", err)
		reply(messages.ResyncReply{Error: err.Error()})
		return
	}
	id, err := f.Request(ctx, vendor, tenant, req.Reason)
	switch {
	case errors.Is(err, ErrUnknownVendor), errors.Is(err, ErrNotLinked), errors.Is(err, ErrNoState):
		log.Info("fan-out: resync request refused", "err", err)
		reply(messages.ResyncReply{Error: err.Error()})
	case err != nil:
		log.Error("fan-out: resync request not stored", "err", err)
		reply(messages.ResyncReply{Error: "the resync could not be stored; ask again"})
	default:
		log.Info("fan-out: resync requested", "resync_id", id, "reason_bytes", len(req.Reason))
		reply(messages.ResyncReply{Accepted: true, ResyncID: id})
	}
}

// dropPending removes the pending resyncs of tenant for vendor.
func (f *Fanout) dropPending(ctx context.Context, vendor, tenant string) error {
	all, err := f.pendingOf(ctx, vendor)
	if err != nil {
		return err
	}
	for _, n := range all[tenant] {
		if err := f.deps.Store.Delete(ctx, n); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("remove the resync %s: %w", n, err)
		}
	}
	return nil
}
