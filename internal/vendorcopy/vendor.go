// Package vendorcopy is the demo LMS vendor: it reads the change events of one
// stream in order, applies them to its own in-memory copy of each tenant, and
// on every export.completed checks that its copy has exactly the counts per
// entity and the state checksum the boundary announced. It reads either the
// canonical LMS stream (lms.<tenant>.>, as the publisher wrote it) or, with
// Config.Vendor, one vendor's own stream (vendor.<vendor>.<tenant>.>, as the
// fan-out wrote it: the vendor's tenants only, cut to its profile, with the
// vendor's counts and checksum). There, a tenant.unlinked drops the copy of
// its tenant: Status and Tenants no longer know it, as if it had never been
// seen.
//
// It applies events idempotently: it remembers the ids of the last
// Config.RememberIDs events of each tenant and skips an event it has applied
// already (the same event stored twice). Its checksum is computed as internal/snapshot
// computes the publisher's: the sum over records of
// snapshot.Mix(snapshot.KeyHash(entity, key), XXH64(object)), where object is
// the record's JSON exactly as the event carried it.
//
// The copy lives in memory, so Run reads the stream from its first event on
// an ordered consumer: a restarted vendor rebuilds its copy, and no event is
// applied after a later one.
package vendorcopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Config configures a Vendor. The zero value takes the defaults.
type Config struct {
	// Vendor, if set, is the vendor whose stream is read: Stream defaults to
	// bus.VendorStream(Vendor), FilterSubject to vendor.<Vendor>.>, and only
	// subjects of that vendor are applied. Empty reads the canonical events.
	Vendor string
	// Stream is the stream to read (default bus.StreamLMS, or the vendor's).
	Stream string
	// FilterSubject selects the events (default "lms.>": every tenant; or
	// vendor.<Vendor>.>).
	FilterSubject string
	// RememberIDs is how many applied event ids are kept per tenant to skip
	// redeliveries. Default 1<<21 (16 bytes each).
	RememberIDs int
	// ProgressEvery: OnProgress is called after every this many applied
	// changes of a tenant, and on every boundary event. Default 1000.
	ProgressEvery int
	// OnProgress, if set, receives a tenant's status. It is called from the
	// consuming goroutine: it must return quickly and not call the Vendor
	// back under a lock of its own that Status needs.
	OnProgress func(Status)
	// Logger gets rejected messages. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	switch {
	case c.Stream != "":
	case c.Vendor != "":
		c.Stream = bus.VendorStream(c.Vendor)
	default:
		c.Stream = bus.StreamLMS
	}
	if c.FilterSubject == "" {
		c.FilterSubject = messages.LMSSubjects
		if c.Vendor != "" {
			c.FilterSubject, _ = messages.VendorSubjects(c.Vendor) // Validate checks the name
		}
	}
	if c.RememberIDs == 0 {
		c.RememberIDs = 1 << 21
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	if c.Vendor != "" {
		if err := messages.ValidateVendor(c.Vendor); err != nil {
			return fmt.Errorf("vendor: %w", err)
		}
	}
	c = c.withDefaults()
	switch {
	case c.RememberIDs < 1:
		return fmt.Errorf("vendor: remember ids %d must be positive", c.RememberIDs)
	case c.ProgressEvery < 1:
		return fmt.Errorf("vendor: progress every %d must be positive", c.ProgressEvery)
	}
	return nil
}

// Vendor is the demo LMS vendor. Its methods are safe for concurrent use;
// Run it once.
type Vendor struct {
	cfg Config
	js  jetstream.JetStream

	mu      sync.Mutex
	tenants map[string]*tenantCopy
	changed chan struct{} // closed and replaced when an export completes
}

// New returns a Vendor reading from js.
func New(js jetstream.JetStream, cfg Config) (*Vendor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Vendor{cfg: cfg.withDefaults(), js: js, tenants: make(map[string]*tenantCopy), changed: make(chan struct{})}, nil
}

// Run consumes the events until ctx is cancelled, then returns nil; an error
// is a consumer that could not be set up. The copy lives in memory, so it
// reads the stream from its first event on an ordered consumer: an
// ephemeral consumer the client recreates from the next expected sequence
// whenever it sees a gap (a lost connection, a server restarted), so no
// event is applied after a later one. There is no durable consumer to
// delete and create again at every start: the server can fail to create a
// durable consumer just deleted under the same name, when the deletion's
// removal of the consumer's directory races the new consumer's first state
// write ("rename .../obs/<name>/o.dat.tmp .../o.dat: no such file or
// directory"; see internal/bus/recreate_race_test.go).
func (v *Vendor) Run(ctx context.Context) error {
	err := v.run(ctx)
	if ctx.Err() != nil {
		return nil // cancelled, perhaps during the setup
	}
	return err
}

func (v *Vendor) run(ctx context.Context) error {
	cons, err := v.js.OrderedConsumer(ctx, v.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{v.cfg.FilterSubject}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("vendor: consumer on %s: %w", v.cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return fmt.Errorf("vendor: consume %s: %w", v.cfg.Stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			v.cfg.Logger.Warn("vendor: next message", "err", err)
			continue
		}
		v.apply(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	}
}

// apply applies one message of the stream. A message that does not decode,
// or another vendor's, is logged and skipped (a real vendor would alert).
func (v *Vendor) apply(m *nats.Msg) {
	if v.cfg.Vendor != "" {
		if vendor, _, err := messages.ParseVendorUnlinkedSubject(m.Subject); err == nil {
			v.unlink(m, vendor)
			return
		}
	}
	subj, err := v.parse(m.Subject)
	if err != nil {
		v.reject(m.Subject, err)
		return
	}
	var (
		st       Status
		progress bool
	)
	if subj.IsBoundary() {
		b, err := messages.Decode[messages.Boundary](m)
		if err != nil {
			v.reject(m.Subject, err)
			return
		}
		v.mu.Lock()
		t := v.tenant(b.Tenant)
		if t.boundary(b) {
			progress = true
			if b.Phase == messages.PhaseCompleted {
				close(v.changed)
				v.changed = make(chan struct{})
			}
		}
		st = t.snapshotStatus()
		v.mu.Unlock()
	} else {
		ev, err := messages.Decode[messages.Event](m)
		if err != nil {
			v.reject(m.Subject, err)
			return
		}
		v.mu.Lock()
		t := v.tenant(ev.Tenant)
		progress = t.change(ev) && t.status.InExport%v.cfg.ProgressEvery == 0
		if progress {
			st = t.snapshotStatus()
		}
		v.mu.Unlock()
	}
	if progress && v.cfg.OnProgress != nil {
		v.cfg.OnProgress(st)
	}
}

// unlink applies a tenant.unlinked of vendor: the tenant no longer flows
// to the vendor, and its copy is dropped.
func (v *Vendor) unlink(m *nats.Msg, vendor string) {
	if vendor != v.cfg.Vendor {
		v.reject(m.Subject, fmt.Errorf("an event of vendor %s in the stream of vendor %s", vendor, v.cfg.Vendor))
		return
	}
	u, err := messages.Decode[messages.TenantUnlinked](m)
	if err == nil && u.Vendor != vendor {
		err = fmt.Errorf("a tenant.unlinked of vendor %s on a subject of vendor %s", u.Vendor, vendor)
	}
	if err != nil {
		v.reject(m.Subject, err)
		return
	}
	v.mu.Lock()
	delete(v.tenants, u.Tenant)
	v.mu.Unlock()
}

// parse parses a subject of the stream read: the LMS stream's, or with
// Config.Vendor one of that vendor's stream.
func (v *Vendor) parse(subject string) (messages.LMSSubject, error) {
	if v.cfg.Vendor == "" {
		return messages.ParseLMSSubject(subject)
	}
	vendor, subj, err := messages.ParseVendorSubject(subject)
	if err == nil && vendor != v.cfg.Vendor {
		err = fmt.Errorf("an event of vendor %s in the stream of vendor %s", vendor, v.cfg.Vendor)
	}
	return subj, err
}

func (v *Vendor) reject(subject string, err error) {
	v.cfg.Logger.Warn("vendor: message rejected", "subject", subject, "err", err)
}

// tenant returns the copy of tenant, creating it. v.mu must be held.
func (v *Vendor) tenant(tenant string) *tenantCopy {
	t, ok := v.tenants[tenant]
	if !ok {
		t = newTenantCopy(tenant, v.cfg.RememberIDs)
		v.tenants[tenant] = t
	}
	return t
}

// Status is what the vendor knows of tenant; false if it has seen no event
// of it.
func (v *Vendor) Status(tenant string) (Status, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t, ok := v.tenants[tenant]
	if !ok {
		return Status{Tenant: tenant}, false
	}
	return t.snapshotStatus(), true
}

// Tenants lists the tenants the vendor has seen, sorted.
func (v *Vendor) Tenants() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Sorted(maps.Keys(v.tenants))
}

// WaitFor waits until tenant's export exportID has completed (its
// export.completed is applied) and returns the status then. Cancelling ctx
// returns ctx's error with the status so far.
func (v *Vendor) WaitFor(ctx context.Context, tenant, exportID string) (Status, error) {
	for {
		v.mu.Lock()
		st := Status{Tenant: tenant}
		if t, ok := v.tenants[tenant]; ok {
			st = t.snapshotStatus()
		}
		ch := v.changed
		v.mu.Unlock()
		if st.LastExport == exportID {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("vendor: wait for export %s of tenant %s: %w", exportID, tenant, ctx.Err())
		}
	}
}

// Copy returns the vendor's copy of tenant: per entity, each record's key
// and its JSON object as the events carried it. The maps are new; the
// objects are shared and must not be modified.
func (v *Vendor) Copy(tenant string) map[pifu.Entity]map[string]json.RawMessage {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[pifu.Entity]map[string]json.RawMessage, len(pifu.Entities))
	t, ok := v.tenants[tenant]
	for i, e := range pifu.Entities {
		m := make(map[string]json.RawMessage)
		if ok {
			for k, r := range t.recs[i] {
				m[k] = r.obj
			}
		}
		out[e] = m
	}
	return out
}

// Checksum computes the state checksum of a copy as export.completed carries
// it, for comparisons with an export read by other means.
func Checksum(c map[pifu.Entity]map[string]json.RawMessage) snapshot.Checksum {
	var sum snapshot.Checksum
	for e, m := range c {
		for k, obj := range m {
			sum.Add(snapshot.KeyHash(e, k), xxhashSum(obj))
		}
	}
	return sum
}
