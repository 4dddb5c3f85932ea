// Package vendortest is the world of the vendor kit's tests: a NATS server
// with a vendor's real user (its permissions as natsauth gives them) beside
// an administrator, and a Feed that publishes a vendor's stream as the
// fan-out does (export boundaries with counts and checksums, changes,
// resyncs, tenant.unlinked) from records it makes up, and knows the state a
// vendor must hold after it.
package vendortest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// The users Users makes.
const (
	Admin         = "admin"
	AdminPassword = "admin-password"
	// VendorPassword is the vendor user's password.
	VendorPassword = "vendor-password"
)

// Users gives a test server two users: Admin, who may do everything, and
// vendor's (natsauth.UserName(vendor), VendorPassword) with exactly the
// permissions natsauth.VendorPermissions gives it.
func Users(vendor string) bustest.Option {
	p := natsauth.VendorPermissions(vendor)
	return func(o *server.Options) {
		o.Users = []*server.User{
			{Username: Admin, Password: AdminPassword},
			{Username: natsauth.UserName(vendor), Password: VendorPassword, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: p.Publish.Allow, Deny: p.Publish.Deny},
				Subscribe: &server.SubjectPermission{Allow: p.Subscribe.Allow, Deny: p.Subscribe.Deny},
			}},
		}
	}
}

// AdminOptions are the connection options of the administrator.
func AdminOptions() []nats.Option { return []nats.Option{nats.UserInfo(Admin, AdminPassword)} }

// VendorOptions are the user options of vendor's user (the kit's Connect
// adds the inbox prefix).
func VendorOptions(vendor string) []nats.Option {
	return []nats.Option{nats.UserInfo(natsauth.UserName(vendor), VendorPassword)}
}

// ProvisionStream makes vendor's stream as skolebuss does.
func ProvisionStream(ctx context.Context, js jetstream.JetStream, vendor string) error {
	sc, err := bus.ProvisionConfig{}.VendorStreamConfig(vendor)
	if err != nil {
		return err
	}
	_, err = js.CreateOrUpdateStream(ctx, sc)
	return err
}

var at = time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)

// Feed publishes a vendor's stream for a set of tenants. It is not safe for
// concurrent use.
type Feed struct {
	vendor string
	rnd    *rand.Rand
	// state is what a vendor must hold: tenant -> entity -> key -> object.
	state   map[string]map[pifu.Entity]map[string][]byte
	exports map[string]int // exports published per tenant
	next    map[string]int // next record number per tenant
	// Published counts the messages published.
	Published int
}

// NewFeed returns a feed of vendor's stream, its changes drawn from seed.
func NewFeed(vendor string, seed uint64) *Feed {
	return &Feed{vendor: vendor, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		state: map[string]map[pifu.Entity]map[string][]byte{}, exports: map[string]int{}, next: map[string]int{}}
}

// ExportOptions change an export.
type ExportOptions struct {
	// Size is the number of records the first export creates (default
	// 1000); later exports update a tenth of the records, delete a
	// twentieth and create a twentieth.
	Size int
	// Lose leaves out the change with this number (counted from 1) from the
	// stream while the boundaries still count it: a vendor's copy then
	// differs at export.completed. 0 loses nothing.
	Lose int
}

type change struct {
	entity pifu.Entity
	key    string
	op     messages.Op
	object []byte
}

func (f *Feed) tenant(tenant string) map[pifu.Entity]map[string][]byte {
	st := f.state[tenant]
	if st == nil {
		st = map[pifu.Entity]map[string][]byte{}
		for _, e := range pifu.Entities {
			st[e] = map[string][]byte{}
		}
		f.state[tenant] = st
	}
	return st
}

func (f *Feed) object(tenant string, e pifu.Entity, key string, gen int) []byte {
	return fmt.Appendf(nil, `{"sourcedid":{"source":"%s","id":"%s"},"entity":"%s","generation":%d,"name":"Navn %d","note":"%s"}`,
		tenant[:min(8, len(tenant))], key, e, gen, f.rnd.IntN(1_000_000), strings.Repeat("x", 40+f.rnd.IntN(80)))
}

func (f *Feed) newRecord(tenant string, gen int) change {
	n := f.next[tenant]
	f.next[tenant]++
	e := pifu.Entities[n%len(pifu.Entities)]
	key := fmt.Sprintf("%s-%d", e, n)
	return change{entity: e, key: key, op: messages.OpCreated, object: f.object(tenant, e, key, gen)}
}

// Export publishes tenant's next export and returns the number of change
// events it announced.
func (f *Feed) Export(ctx context.Context, js jetstream.JetStream, tenant string, o ExportOptions) (int, error) {
	if o.Size == 0 {
		o.Size = 1000
	}
	st := f.tenant(tenant)
	gen := f.exports[tenant]
	var changes []change
	if gen == 0 && f.next[tenant] == 0 {
		for range o.Size {
			changes = append(changes, f.newRecord(tenant, gen))
		}
	} else {
		var keys []change
		for _, e := range pifu.Entities {
			for _, k := range slices.Sorted(maps.Keys(st[e])) {
				keys = append(keys, change{entity: e, key: k})
			}
		}
		var dels []change
		for _, c := range keys {
			switch r := f.rnd.IntN(20); {
			case r < 2:
				changes = append(changes, change{entity: c.entity, key: c.key, op: messages.OpUpdated, object: f.object(tenant, c.entity, c.key, gen)})
			case r == 2:
				dels = append(dels, change{entity: c.entity, key: c.key, op: messages.OpDeleted, object: st[c.entity][c.key]})
			}
		}
		for range len(keys) / 20 {
			changes = append(changes, f.newRecord(tenant, gen))
		}
		changes = append(changes, dels...)
	}
	return len(changes), f.publishExport(ctx, js, tenant, fmt.Sprintf("export-%d", gen), false, changes, o.Lose)
}

// Resync publishes a resync of tenant's state: export.started with resync,
// a created event of every record, export.completed with resync.
func (f *Feed) Resync(ctx context.Context, js jetstream.JetStream, tenant string) error {
	st := f.tenant(tenant)
	var changes []change
	for _, e := range pifu.Entities {
		for _, k := range slices.Sorted(maps.Keys(st[e])) {
			changes = append(changes, change{entity: e, key: k, op: messages.OpCreated, object: st[e][k]})
		}
	}
	return f.publishExport(ctx, js, tenant, fmt.Sprintf("export-%d", f.exports[tenant]-1), true, changes, 0)
}

func (f *Feed) publishExport(ctx context.Context, js jetstream.JetStream, tenant, exportID string, resync bool, changes []change, lose int) error {
	st := f.tenant(tenant)
	counts := map[pifu.Entity]messages.Counts{}
	for _, c := range changes {
		n := counts[c.entity]
		switch c.op {
		case messages.OpCreated:
			n.Created++
			st[c.entity][c.key] = c.object
		case messages.OpUpdated:
			n.Updated++
			st[c.entity][c.key] = c.object
		case messages.OpDeleted:
			n.Deleted++
			delete(st[c.entity], c.key)
		}
		counts[c.entity] = n
	}
	var sum snapshot.Checksum
	for _, e := range pifu.Entities {
		n := counts[e]
		n.Total = len(st[e])
		counts[e] = n
		for k, obj := range st[e] {
			sum.Add(snapshot.KeyHash(e, k), snapshotContent(obj))
		}
	}
	f.exports[tenant]++
	run := fmt.Sprintf("%d", f.Published) // unique per publication: a resync of one export twice is two
	var msgs []*nats.Msg
	boundary := func(p messages.Phase) error {
		b := messages.Boundary{ID: id(tenant, run, string(p)), Tenant: tenant, ExportID: exportID, Phase: p, Time: at, Counts: counts}
		if p == messages.PhaseCompleted {
			b.Checksum = messages.FormatChecksum(sum)
		}
		m, err := messages.Encode(b)
		if err != nil {
			return err
		}
		m.Subject, _ = messages.VendorBoundarySubject(f.vendor, tenant, p)
		if resync {
			m.Data = append(m.Data[:len(m.Data)-1], `,"resync":true}`...)
		}
		msgs = append(msgs, m)
		return nil
	}
	if err := boundary(messages.PhaseStarted); err != nil {
		return err
	}
	for i, c := range changes {
		if i+1 == lose {
			continue
		}
		ev := messages.Event{ID: id(tenant, run, c.key, string(c.op)), Tenant: tenant, ExportID: exportID, Entity: c.entity,
			Op: c.op, Key: c.key, Time: at, Object: c.object}
		if c.op == messages.OpUpdated {
			ev.Previous = []byte(`{"generation":0}`)
		}
		m, err := messages.Encode(ev)
		if err != nil {
			return err
		}
		m.Subject, _ = messages.VendorEventSubject(f.vendor, tenant, c.entity, c.op)
		msgs = append(msgs, m)
	}
	if err := boundary(messages.PhaseCompleted); err != nil {
		return err
	}
	return f.publish(ctx, js, msgs)
}

// Unlink publishes tenant.unlinked of tenant; the vendor must then hold
// nothing of it.
func (f *Feed) Unlink(ctx context.Context, js jetstream.JetStream, tenant string) error {
	m, err := messages.Encode(messages.TenantUnlinked{ID: id(tenant, "unlinked", fmt.Sprint(f.Published)), Vendor: f.vendor, Tenant: tenant, Time: at})
	if err != nil {
		return err
	}
	delete(f.state, tenant)
	return f.publish(ctx, js, []*nats.Msg{m})
}

func (f *Feed) publish(ctx context.Context, js jetstream.JetStream, msgs []*nats.Msg) error {
	for chunk := range slices.Chunk(msgs, 1000) {
		futs := make([]jetstream.PubAckFuture, 0, len(chunk))
		for _, m := range chunk {
			fut, err := js.PublishMsgAsync(m)
			for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && ctx.Err() == nil {
				fut, err = js.PublishMsgAsync(m) // a loaded machine: the acknowledgements lag
			}
			if err != nil {
				return fmt.Errorf("publish %s: %w", m.Subject, err)
			}
			futs = append(futs, fut)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, fut := range futs {
			select {
			case err := <-fut.Err():
				return fmt.Errorf("publish %s: %w", fut.Msg().Subject, err)
			default:
			}
		}
		f.Published += len(chunk)
	}
	return nil
}

// Records is the state a vendor must hold of tenant: per entity, each
// key's object.
func (f *Feed) Records(tenant string) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for _, e := range pifu.Entities {
		out[string(e)] = maps.Clone(f.state[tenant][e])
		if out[string(e)] == nil {
			out[string(e)] = map[string][]byte{}
		}
	}
	return out
}

// Checksum is the checksum of the state a vendor must hold of tenant, as
// export.completed carries it.
func (f *Feed) Checksum(tenant string) string {
	var sum snapshot.Checksum
	for e, recs := range f.state[tenant] {
		for k, obj := range recs {
			sum.Add(snapshot.KeyHash(e, k), snapshotContent(obj))
		}
	}
	return messages.FormatChecksum(sum)
}

func id(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

func snapshotContent(obj []byte) uint64 { return xxhash.Sum64(obj) }
