package fanout

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// change is one change event of an export, decoded: what a vendor's copy
// needs of the canonical event.
type change struct {
	seq    uint64 // its LMS stream sequence
	id     string
	key    string
	entity pifu.Entity
	time   time.Time
	c      projection.Canonical
	// delta is what the change moves the canonical state's checksum by
	// (snapshot.Checksum): the mix of the key and the object's bytes
	// added unless it is a deletion, the record's before the change taken
	// away unless it is a creation.
	delta snapshot.Checksum
}

// exportSource gives the change events of one export of one tenant, in stream
// order, as many times as asked: from the memory of a decoded export, or
// read and decoded from the LMS stream each time.
type exportSource interface {
	// each calls fn with every change event of the export after the
	// stream sequence after, in stream order. fn must not keep ch.
	each(ctx context.Context, after uint64, fn func(ch *change) error) error
	// started is the export's canonical export.started, if the stream
	// holds it after the sequence after; zero otherwise.
	started(ctx context.Context, after uint64) (messages.Boundary, error)
}

// decoded is one export read once from the LMS stream and decoded once,
// held in memory for every vendor of its tenant. It is read-only once
// built.
type decoded struct {
	done       messages.Boundary
	from, end  uint64 // read from sequence from up to end (the export.completed)
	start      messages.Boundary
	startSeq   uint64
	changes    []change
	mu         sync.Mutex
	afterIndex map[string]*projection.Index // by the index before the export (its encoding)
	tallies    map[tallyKey]*tallied
	flipsBy    map[string]*flipped // by the index before the export (its encoding)
	groups     map[tallyKey]*group // publishing groups vendors may join
}

// tallyKey is what a vendor's tally of an export depends on: its profile
// and its guardian index before the export (its encoding; "" for a profile
// with guardians, which needs none).
type tallyKey struct {
	profile projection.Profile
	before  string
}

// tallied is a tally made once for every vendor with the same tallyKey.
type tallied struct {
	ready chan struct{}
	t     *tally
	err   error
}

// whole reports whether a vendor that delivered up to the sequence after
// takes every change of the export (what the vendors can share).
func (d *decoded) whole(after uint64) bool {
	return len(d.changes) == 0 || d.changes[0].seq > after
}

// tally is the tally of the export for a vendor of key that takes every
// change: made by the first such vendor with count, shared by the others.
func (d *decoded) tally(ctx context.Context, key tallyKey, count func() (*tally, error)) (*tally, error) {
	d.mu.Lock()
	e, ok := d.tallies[key]
	if !ok {
		if d.tallies == nil {
			d.tallies = map[tallyKey]*tallied{}
		}
		e = &tallied{ready: make(chan struct{})}
		d.tallies[key] = e
	}
	d.mu.Unlock()
	if ok {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			return e.t, nil
		}
		return count() // the first one failed: count alone
	}
	e.t, e.err = count()
	if e.err != nil {
		d.mu.Lock()
		delete(d.tallies, key) // the next one counts again
		d.mu.Unlock()
	}
	close(e.ready)
	return e.t, e.err
}

func (d *decoded) each(ctx context.Context, after uint64, fn func(*change) error) error {
	for i := range d.changes {
		ch := &d.changes[i]
		if ch.seq <= after {
			continue
		}
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fn(ch); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoded) started(_ context.Context, after uint64) (messages.Boundary, error) {
	if d.startSeq > after {
		return d.start, nil
	}
	return messages.Boundary{}, nil
}

// index is the guardian index after the export for a vendor whose index
// before it is the encoding before ("" for none): the first vendor with
// that index carries it over the export's changes, the others share it.
// The returned indexes are read-only.
func (d *decoded) index(ctx context.Context, before []byte, after uint64) (pre, post *projection.Index, err error) {
	pre = projection.NewIndex().Build()
	if len(before) > 0 {
		if err := pre.UnmarshalBinary(before); err != nil {
			return nil, nil, err
		}
	}
	// Shared only between vendors that take every change of the export.
	whole := d.whole(after)
	d.mu.Lock()
	defer d.mu.Unlock()
	if x, ok := d.afterIndex[string(before)]; ok && whole {
		return pre, x, nil
	}
	post = pre.Clone()
	if err := d.each(ctx, after, func(ch *change) error { post.Apply(ch.c); return nil }); err != nil {
		return nil, nil, err
	}
	if whole {
		if d.afterIndex == nil {
			d.afterIndex = map[string]*projection.Index{}
		}
		d.afterIndex[string(before)] = post
	}
	return pre, post, nil
}

// stream reads the export from the LMS stream and decodes it on every
// each: the way when the export does not fit the cache.
type stream struct {
	js       jetstream.JetStream
	done     messages.Boundary
	end      uint64
	startSeq uint64
	start    messages.Boundary
}

func (s *stream) each(ctx context.Context, after uint64, fn func(*change) error) error {
	return read(ctx, s.js, s.done, after, s.end, func(seq uint64, b messages.Boundary) {
		s.start, s.startSeq = b, seq
	}, fn)
}

func (s *stream) started(ctx context.Context, after uint64) (messages.Boundary, error) {
	if s.startSeq == 0 {
		// Noted by the first each; read (the events skipped undecoded)
		// when started is asked first.
		if err := read(ctx, s.js, s.done, after, s.end, func(seq uint64, b messages.Boundary) {
			s.start, s.startSeq = b, seq
		}, nil); err != nil {
			return messages.Boundary{}, err
		}
	}
	if s.startSeq > after {
		return s.start, nil
	}
	return messages.Boundary{}, nil
}

// read calls fn with every change event of the export ending at the
// export.completed done (stream sequence end), decoded, in stream order:
// the events of the tenant after the stream sequence after, up to the
// export.completed, that belong to this export (a partial export a
// publisher gave up on is not the tenant's state, and is left out). It
// calls started with the export's export.started on the way. With fn nil
// the change events are skipped undecoded.
func read(ctx context.Context, js jetstream.JetStream, done messages.Boundary, after, end uint64,
	started func(uint64, messages.Boundary), fn func(*change) error) error {
	var each func(uint64, *nats.Msg) error
	if fn != nil {
		var ch change
		h := snapshot.NewHasher()
		each = func(seq uint64, m *nats.Msg) error {
			keep, err := decodeChange(seq, m, done.ExportID, &ch, h)
			if err != nil || !keep {
				return err
			}
			return fn(&ch)
		}
	}
	return readRaw(ctx, js, done, after, end, started, each)
}

// readRaw is read with the change events undecoded: fn gets every change
// event message of the tenant, of any export.
func readRaw(ctx context.Context, js jetstream.JetStream, done messages.Boundary, after, end uint64,
	started func(uint64, messages.Boundary), fn func(uint64, *nats.Msg) error) error {
	filter, err := messages.TenantEventsFilter(done.Tenant)
	if err != nil {
		return err
	}
	oc, err := js.OrderedConsumer(ctx, bus.StreamLMS, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: after + 1})
	if err != nil {
		return fmt.Errorf("read the export %s of %s: %w", done.ExportID, done.Tenant, err)
	}
	it, err := oc.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the export %s of %s: %w", done.ExportID, done.Tenant, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		seq := meta.Sequence.Stream
		if seq > end {
			return fmt.Errorf("read the export %s of %s: passed its export.completed at %d", done.ExportID, done.Tenant, end)
		}
		l, err := messages.ParseLMSSubject(m.Subject())
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
		if l.IsBoundary() {
			if seq == end {
				return nil
			}
			if l.Phase == messages.PhaseStarted {
				b, err := messages.Decode[messages.Boundary](msg)
				if err != nil {
					return err
				}
				if b.ExportID == done.ExportID {
					started(seq, b)
				}
			}
			continue
		}
		if fn == nil {
			continue
		}
		if err := fn(seq, msg); err != nil {
			return err
		}
	}
}

// decodeChange decodes the change event m (stream sequence seq) into ch,
// and reports whether it is of the export exportID.
func decodeChange(seq uint64, m *nats.Msg, exportID string, ch *change, h *snapshot.Hasher) (bool, error) {
	ev, err := messages.Decode[messages.Event](m)
	if err != nil {
		return false, err
	}
	if ev.ExportID != exportID {
		return false, nil
	}
	c, err := projection.Decode(ev.Entity, ev.Op, ev.Object, ev.Previous)
	if err != nil {
		return false, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	*ch = change{seq: seq, id: ev.ID, key: ev.Key, entity: ev.Entity, time: ev.Time, c: c}
	ch.delta = canonicalDelta(h, ev, c)
	return true, nil
}

// cache holds decoded exports for the vendors of their tenant, at most
// limit change events in all. An export is read and decoded by the first
// vendor that delivers it while the others linked to the tenant wait for
// it, then each projects, counts and publishes from memory. An export
// leaves the cache when every vendor linked to its tenant has delivered it
// (or had it before), or, unused, to make room for another. An export
// that does not fit (larger than limit, or the room held by exports in
// use) is read from the stream by each vendor, as often as it needs.
type cache struct {
	limit    int
	linked   map[string][]string                   // tenant -> vendors linked to it
	profiles map[string]map[projection.Profile]int // tenant -> profile -> vendors linked to it
	mu       sync.Mutex
	held     int // change events held
	tick     uint64
	entries  map[cacheKey]*entry
	// together counts the vendors' exports published in a group of more
	// than one (what tests look at).
	together atomic.Int64
	// decoded counts the exports read into memory (what tests look at).
	decoded atomic.Int64
	// done are the vendors that have each export, until all linked to its
	// tenant have it (kept apart from the entries: an export evicted and
	// read again is still had by them).
	done map[cacheKey]map[string]bool
}

type cacheKey struct {
	tenant string
	end    uint64
}

type entry struct {
	ready chan struct{} // closed once d or err is set
	d     *decoded
	err   error
	n     int // change events held
	users int
	used  uint64 // the tick of its last use
}

func newCache(limit int, vendors []Vendor) *cache {
	c := &cache{limit: limit, linked: map[string][]string{}, entries: map[cacheKey]*entry{},
		done: map[cacheKey]map[string]bool{}}
	c.profiles = map[string]map[projection.Profile]int{}
	for _, v := range vendors {
		for _, t := range v.Tenants {
			c.linked[t] = append(c.linked[t], v.Name)
			if c.profiles[t] == nil {
				c.profiles[t] = map[projection.Profile]int{}
			}
			c.profiles[t][v.Profile]++
		}
	}
	return c
}

// changeCount is the number of change events an export.completed counts.
func changeCount(b messages.Boundary) int {
	n := 0
	for _, c := range b.Counts {
		n += c.Created + c.Updated + c.Deleted
	}
	return n
}

// get returns the source of the export ending at the export.completed b
// (stream sequence end) for vendor, which delivered up to the stream
// sequence after, and the function to call when the vendor is done with
// it, saying whether the vendor has the export now. It reads and decodes
// the export when it fits and no other vendor has; ctx bounds the wait and
// the read.
func (c *cache) get(ctx context.Context, js jetstream.JetStream, vendor string, b messages.Boundary, after, end uint64) (exportSource, func(delivered bool), error) {
	k := cacheKey{b.Tenant, end}
	streamed := func() (exportSource, func(bool), error) {
		return &stream{js: js, done: b, end: end}, func(delivered bool) { c.finish(k, nil, vendor, delivered) }, nil
	}
	n := changeCount(b)
	for {
		c.mu.Lock()
		e, ok := c.entries[k]
		if ok {
			e.users++
			c.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				c.finish(k, e, vendor, false)
				return nil, nil, ctx.Err()
			}
			if e.err != nil {
				// The reader failed (or stopped): the next one reads.
				c.finish(k, e, vendor, false)
				continue
			}
			if e.d.from > after+1 {
				c.finish(k, e, vendor, false) // read from later than this vendor needs
				return streamed()
			}
			return e.d, func(delivered bool) { c.finish(k, e, vendor, delivered) }, nil
		}
		if n > c.limit || !c.makeRoom(n) {
			c.mu.Unlock()
			return streamed()
		}
		e = &entry{ready: make(chan struct{}), n: n, users: 1}
		c.entries[k] = e
		c.held += n
		c.mu.Unlock()
		d, err := decode(ctx, js, b, after, end)
		c.decoded.Add(1)
		c.mu.Lock()
		if err == nil && len(d.changes) > n {
			// More change events than the boundary counts: hold them all.
			c.held += len(d.changes) - n
			e.n = len(d.changes)
		}
		e.d, e.err = d, err
		if err != nil {
			c.remove(k, e) // the next one reads again
		}
		c.mu.Unlock()
		close(e.ready)
		if err != nil {
			c.finish(k, e, vendor, false)
			return nil, nil, err
		}
		return d, func(delivered bool) { c.finish(k, e, vendor, delivered) }, nil
	}
}

// makeRoom evicts unused exports, the least recently used first, until n
// more change events fit. c.mu must be held.
func (c *cache) makeRoom(n int) bool {
	for c.held+n > c.limit {
		var victim cacheKey
		var ve *entry
		for k, e := range c.entries {
			if e.users == 0 && e.d != nil && (ve == nil || e.used < ve.used) {
				victim, ve = k, e
			}
		}
		if ve == nil {
			return false
		}
		c.remove(victim, ve)
	}
	return true
}

func (c *cache) remove(k cacheKey, e *entry) {
	if c.entries[k] == e {
		delete(c.entries, k)
		c.held -= e.n
	}
}

// finish ends vendor's use of the export k (of its entry e, if it had
// one) and notes whether the vendor has the export now. Once every vendor
// linked to the tenant has it, the export leaves the cache.
func (c *cache) finish(k cacheKey, e *entry, vendor string, delivered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e != nil {
		e.users--
		c.tick++
		e.used = c.tick
	}
	if !delivered {
		return
	}
	done := c.done[k]
	if done == nil {
		done = map[string]bool{}
		c.done[k] = done
	}
	done[vendor] = true
	for _, v := range c.linked[k.tenant] {
		if !done[v] {
			return
		}
	}
	delete(c.done, k)
	if cur, ok := c.entries[k]; ok && cur.users == 0 {
		c.remove(k, cur)
	}
}

// delivered notes that vendor had the export ending at end of tenant
// before (finish without a use).
func (c *cache) delivered(tenant string, end uint64, vendor string) {
	c.finish(cacheKey{tenant, end}, nil, vendor, true)
}

// alike is the number of vendors linked to tenant with profile p.
func (c *cache) alike(tenant string, p projection.Profile) int {
	return c.profiles[tenant][p]
}

// holding is the number of change events the cache holds.
func (c *cache) holding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// decode reads the export ending at the export.completed b (sequence
// end) after the sequence after, and decodes it on every core: the events
// are read in batches, decoded by as many workers as GOMAXPROCS, and put
// together again in stream order.
func decode(ctx context.Context, js jetstream.JetStream, b messages.Boundary, after, end uint64) (*decoded, error) {
	d := &decoded{done: b, from: after + 1, end: end, changes: make([]change, 0, changeCount(b))}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(2, runtime.GOMAXPROCS(0))
	work := make(chan *batch, workers)
	order := make(chan *batch, 4*workers)
	for range workers {
		go func() { // ends when work is closed
			for bt := range work {
				bt.decode(b.ExportID)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() { // ends with the read
		defer close(order)
		defer close(work)
		cur := &batch{done: make(chan struct{})}
		flush := func() error {
			if len(cur.msgs) == 0 {
				return nil
			}
			select { // to a worker first: a batch in order is always decoded
			case work <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case order <- cur:
			case <-ctx.Done():
				return ctx.Err()
			}
			cur = &batch{done: make(chan struct{})}
			return nil
		}
		err := readRaw(ctx, js, b, after, end, func(seq uint64, s messages.Boundary) { d.start, d.startSeq = s, seq },
			func(seq uint64, m *nats.Msg) error {
				cur.seqs, cur.msgs = append(cur.seqs, seq), append(cur.msgs, m)
				if len(cur.msgs) < batchSize {
					return nil
				}
				return flush()
			})
		if err == nil {
			err = flush()
		}
		readErr <- err
	}()
	var first error
	for bt := range order {
		<-bt.done
		if first == nil && bt.err != nil {
			first = bt.err
			cancel() // the read stops; the batches in order are drained
		}
		if first == nil {
			d.changes = append(d.changes, bt.out...)
		}
	}
	if err := <-readErr; first == nil && err != nil {
		first = err
	}
	if first != nil {
		return nil, first
	}
	return d, nil
}

// batchSize is the change events one decoding worker takes at a time.
const batchSize = 256

// batch is change event messages read, and decoded by a worker.
type batch struct {
	seqs []uint64
	msgs []*nats.Msg
	out  []change // those of the export, decoded
	err  error
	done chan struct{} // closed when decoded
}

func (bt *batch) decode(exportID string) {
	defer close(bt.done)
	bt.out = make([]change, 0, len(bt.msgs))
	var ch change
	h := snapshot.NewHasher()
	for i, m := range bt.msgs {
		keep, err := decodeChange(bt.seqs[i], m, exportID, &ch, h)
		if err != nil {
			bt.err = err
			return
		}
		if keep {
			bt.out = append(bt.out, ch)
		}
	}
	bt.msgs = nil
}
