package vendorkit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Store is the vendor's copy of its tenants, which the kit applies events to.
// Implementations must be safe for use by one Kit at a time (the kit calls
// them from one goroutine).
type Store interface {
	// Position is the stream sequence of the last event applied (the Seq
	// of the last event of the last successful Apply); 0 when nothing is.
	Position(ctx context.Context) (uint64, error)
	// Apply applies events, in order, and records the Seq of the last one as
	// the position, all in one transaction: after an error or a crash either
	// all of it is applied or nothing. The events' Seq increase; each is
	// above the position. What each kind asks:
	//   - KindChange: OpCreated and OpUpdated store the record (tenant,
	//     Change.Entity, Change.Key) with Change.Object and Change.Mix,
	//     replacing what it held; OpDeleted removes it (a record not held is
	//     no error).
	//   - KindExportStarted with Boundary.Resync: remove every record of the
	//     tenant.
	//   - KindTenantUnlinked: remove every record of the tenant.
	//   - anything else changes no record (a store may note it).
	// An error stops the kit's reading; it reads again from Position.
	Apply(ctx context.Context, events []Event) error
	// Summary is what the store holds of tenant: records per entity and
	// the sum of their mixes.
	Summary(ctx context.Context, tenant string) (Summary, error)
}

// Summary is what a store holds of one tenant.
type Summary struct {
	// Counts are the records per entity (an entity without records may be
	// missing).
	Counts   map[string]int
	Checksum Checksum
}

// Verify compares s with an export.completed: it returns "" when the counts
// of every entity and the checksum are equal, and otherwise says what
// differs.
func (s Summary) Verify(b *Boundary) string {
	var diff string
	add := func(format string, a ...any) {
		if diff != "" {
			diff += "; "
		}
		diff += fmt.Sprintf(format, a...)
	}
	for _, e := range Entities {
		if got, want := s.Counts[e], b.Counts[e].Total; got != want {
			add("%d %s records, export.completed says %d", got, e, want)
		}
	}
	if got := s.Checksum.String(); got != b.Checksum {
		add("checksum %s, export.completed says %s", got, b.Checksum)
	}
	return diff
}

// MemoryStore is a Store in memory: the reference of what a Store does, and
// a copy for tests and demos (a process that restarts starts from nothing,
// since its position goes with it). It is safe for concurrent use.
type MemoryStore struct {
	mu      sync.Mutex
	pos     uint64
	tenants map[string]*memTenant
}

type memRecord struct {
	object json.RawMessage
	mix    uint64
}

type memTenant struct {
	records map[string]map[string]memRecord // entity -> key -> record
	sum     Checksum
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{tenants: make(map[string]*memTenant)} }

var _ Store = (*MemoryStore)(nil)

// Position implements Store.
func (s *MemoryStore) Position(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos, nil
}

// Apply implements Store. It refuses events at or below the position.
func (s *MemoryStore) Apply(_ context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.pos
	for _, ev := range events {
		if ev.Seq <= last {
			return fmt.Errorf("vendorkit: memory store: event %d after %d", ev.Seq, last)
		}
		last = ev.Seq
	}
	for _, ev := range events {
		switch ev.Kind {
		case KindChange:
			s.change(ev.Tenant, ev.Change)
		case KindExportStarted:
			if ev.Boundary.Resync {
				delete(s.tenants, ev.Tenant)
			}
		case KindTenantUnlinked:
			delete(s.tenants, ev.Tenant)
		}
	}
	s.pos = last
	return nil
}

func (s *MemoryStore) change(tenant string, c *Change) {
	t := s.tenants[tenant]
	if t == nil {
		t = &memTenant{records: make(map[string]map[string]memRecord)}
		s.tenants[tenant] = t
	}
	recs := t.records[c.Entity]
	if recs == nil {
		recs = make(map[string]memRecord)
		t.records[c.Entity] = recs
	}
	if old, ok := recs[c.Key]; ok {
		t.sum.Remove(old.mix)
		delete(recs, c.Key)
	}
	if c.Op != OpDeleted {
		recs[c.Key] = memRecord{object: c.Object, mix: c.Mix}
		t.sum.Add(c.Mix)
	}
}

// Summary implements Store.
func (s *MemoryStore) Summary(_ context.Context, tenant string) (Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := Summary{Counts: make(map[string]int)}
	if t := s.tenants[tenant]; t != nil {
		for e, recs := range t.records {
			sum.Counts[e] = len(recs)
		}
		sum.Checksum = t.sum
	}
	return sum, nil
}

// Records returns the records held of tenant: per entity, each key's
// object as its event carried it. The maps are new; the objects are shared
// and must not be modified.
func (s *MemoryStore) Records(tenant string) map[string]map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]json.RawMessage, len(Entities))
	for _, e := range Entities {
		out[e] = make(map[string]json.RawMessage)
	}
	if t := s.tenants[tenant]; t != nil {
		for e, recs := range t.records {
			for k, r := range recs {
				out[e][k] = r.object
			}
		}
	}
	return out
}

// Tenants lists the tenants the store holds records of.
func (s *MemoryStore) Tenants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedKeys(s.tenants)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
