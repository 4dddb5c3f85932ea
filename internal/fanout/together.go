package fanout

import (
	"context"
	"maps"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// gather is the longest the first vendor of a publishing group waits for
// the other vendors of the tenant with its profile to join it. Vendors in
// step come from the same decoded export, its shared index and count, so
// they arrive within moments of each other; one that is behind or failing
// delays the others by gather at most, then publishes on its own.
const gather = time.Second

// group is the vendors alike (one tallyKey) that publish one decoded
// export together: each change is projected and its body encoded once,
// then sent to each vendor under the vendor's id and subject, through the
// vendor's own outlet.
type group struct {
	members []*export
	open    bool          // vendors may still join
	joined  chan struct{} // signalled on each join
	done    chan struct{} // closed when every member's publishing ended
	errs    map[*export]error
}

// publishWith publishes x's copy of the export, together with the vendors
// alike that join within gather (it waits for no more once every vendor of
// the tenant with the profile has), and returns x's outcome: one vendor's
// failure (its stream full, say) ends that vendor's publishing only.
func (d *decoded) publishWith(ctx context.Context, key tallyKey, x *export) error {
	d.mu.Lock()
	if d.groups == nil {
		d.groups = map[tallyKey]*group{}
	}
	g, ok := d.groups[key]
	lead := !ok || !g.open
	if lead {
		g = &group{open: true, joined: make(chan struct{}, 1), done: make(chan struct{}), errs: map[*export]error{}}
		d.groups[key] = g
	}
	g.members = append(g.members, x)
	select {
	case g.joined <- struct{}{}:
	default:
	}
	d.mu.Unlock()
	if !lead {
		select {
		case <-g.done:
			return g.errs[x]
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	alike := x.f.cache.alike(x.done.Tenant, key.profile)
	timer := time.NewTimer(gather)
	defer timer.Stop()
	for waiting := true; waiting; {
		d.mu.Lock()
		n := len(g.members)
		d.mu.Unlock()
		if n >= alike {
			break
		}
		select {
		case <-g.joined:
		case <-timer.C:
			waiting = false
		case <-ctx.Done():
			waiting = false
		}
	}
	d.mu.Lock()
	g.open = false
	if d.groups[key] == g {
		delete(d.groups, key)
	}
	members := g.members
	d.mu.Unlock()
	if len(members) > 1 {
		x.f.cache.together.Add(int64(len(members)))
	}
	publishTogether(ctx, d, members, g.errs)
	close(g.done)
	return g.errs[x]
}

// publishTogether publishes the export to every member, noting each
// member's outcome in errs.
func publishTogether(ctx context.Context, d *decoded, members []*export, errs map[*export]error) {
	outs := make([]*outlet, len(members))
	for i, x := range members {
		if outs[i], errs[x] = x.open(ctx); errs[x] != nil {
			outs[i] = nil
		}
	}
	lead := members[0]
	err := lead.each(ctx, func(ev *change) error {
		ch, err := lead.proj.Change(ev.c)
		if err != nil || !ch.Sent() {
			return err
		}
		var first *nats.Msg
		for i, o := range outs {
			if o == nil {
				continue
			}
			var m *nats.Msg
			if first == nil {
				if m, err = o.enc.encode(ev, ch); err != nil {
					return err
				}
				first = m
			} else if m, err = o.enc.like(first, ev, ch.Op); err != nil {
				return err
			}
			if err := o.send(ctx, m); err != nil {
				errs[members[i]], outs[i] = err, nil
			}
		}
		return nil
	})
	for i, o := range outs {
		switch {
		case o == nil:
		case err != nil:
			errs[members[i]] = err
		default:
			errs[members[i]] = o.close(ctx)
		}
	}
}

// like is the vendor's copy of the change ev projected to ch, made from m,
// another vendor's copy of it (the same body and headers but the ids), by
// a vendorEncoder of the same tenant and export.
func (e *vendorEncoder) like(m *nats.Msg, ev *change, op messages.Op) (*nats.Msg, error) {
	subj, err := e.subject(ev.entity, op)
	if err != nil {
		return nil, err
	}
	h := maps.Clone(m.Header)
	id := []string{VendorEventID(ev.id, e.vendor)}
	h[messages.HeaderID], h[messages.HeaderMsgID] = id, id
	return &nats.Msg{Subject: subj, Header: h, Data: m.Data}, nil
}
