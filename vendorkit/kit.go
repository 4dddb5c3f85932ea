package vendorkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// Config configures a Kit. Vendor is required; the rest has defaults.
type Config struct {
	// Vendor is the vendor's name: its stream is VENDOR_<Vendor>.
	Vendor string
	// Consumer names the kit's durable consumer on that stream (default
	// "vendorkit"): it is made anew at every reading, under the names
	// Consumer-0, Consumer-1 and Consumer-2 in turn. Run one Kit per
	// consumer name and store.
	Consumer string
	// BatchSize is the most events one Store.Apply gets (default 1000).
	// A batch also ends when no message has arrived for BatchWait
	// (default 5ms), and before every export.completed.
	BatchSize int
	BatchWait time.Duration
	// MaxAckPending is how many messages the server sends ahead of the
	// acknowledgements (default 10000); AckWait how long it waits for one
	// before sending it again (default 1 minute).
	MaxAckPending int
	AckWait       time.Duration
	// RetryWait is the pause before reading again after an error (default
	// 1s, doubling up to 30 times that while errors continue).
	RetryWait time.Duration
	// ResyncRetry is how long after an unanswered or refused resync request
	// the kit asks again, and after an accepted one that has not started
	// (default 1 minute).
	ResyncRetry time.Duration
	// OnExport, if set, is called after each export.completed is checked,
	// from the kit's goroutine: it must return quickly.
	OnExport func(ExportCheck)
	// Logger receives what the kit does and the errors it recovers from
	// (default: discard).
	Logger *slog.Logger
}

// ExportCheck is the result of checking the store at an export.completed.
type ExportCheck struct {
	Tenant   string
	ExportID string
	Resync   bool   // the export was a resync
	Seq      uint64 // the export.completed's stream sequence
	Summary  Summary
	// Mismatch is "" when the store holds exactly what export.completed
	// says; otherwise what differs (and the kit asks for a resync).
	Mismatch string
}

func (c Config) withDefaults() Config {
	if c.Consumer == "" {
		c.Consumer = "vendorkit"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BatchWait == 0 {
		c.BatchWait = 5 * time.Millisecond
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 10000
	}
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.RetryWait == 0 {
		c.RetryWait = time.Second
	}
	if c.ResyncRetry == 0 {
		c.ResyncRetry = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field that is wrong.
func (c Config) Validate() error {
	if err := messages.ValidateVendor(c.Vendor); err != nil {
		return fmt.Errorf("vendorkit: vendor: %w", err)
	}
	c = c.withDefaults()
	if err := messages.ValidateToken("consumer", c.Consumer); err != nil {
		return fmt.Errorf("vendorkit: %w", err)
	}
	switch {
	case c.BatchSize < 1:
		return fmt.Errorf("vendorkit: batch size %d must be positive", c.BatchSize)
	case c.BatchWait < 0:
		return fmt.Errorf("vendorkit: batch wait %s must not be negative", c.BatchWait)
	case c.MaxAckPending < c.BatchSize:
		return fmt.Errorf("vendorkit: max ack pending %d must be at least the batch size %d", c.MaxAckPending, c.BatchSize)
	case c.AckWait < time.Second:
		return fmt.Errorf("vendorkit: ack wait %s must be at least 1s", c.AckWait)
	case c.RetryWait <= 0 || c.ResyncRetry <= 0:
		return errors.New("vendorkit: retry wait and resync retry must be positive")
	}
	return nil
}

// Kit applies a vendor's events to its Store. Run it once; Status and
// RequestResync are safe to call at any time from any goroutine.
type Kit struct {
	cfg   Config
	nc    *nats.Conn
	js    jetstream.JetStream
	store Store

	// gen is the generation of the next consumer (-1: look for what an
	// earlier run left); stale the consumers to delete once it is made.
	// Only Run's goroutine uses them.
	gen   int
	stale []string

	mu      sync.Mutex
	tenants map[string]*TenantStatus
	resyncs map[string]*resyncWant // tenants to ask a resync for
	wake    chan struct{}          // a resync is wanted
}

// TenantStatus is what the kit knows of one tenant since it started.
type TenantStatus struct {
	Tenant string
	// LastExport is the last export whose export.completed was checked,
	// Mismatch what differed then ("" when the store matched).
	LastExport string
	Mismatch   string
	// Applied counts the change events applied.
	Applied int
	// ResyncID is the id of the last resync skolebuss accepted, until its
	// export.started arrives; ResyncPending says a resync is wanted and not
	// yet accepted.
	ResyncID      string
	ResyncPending bool
	Unlinked      bool
}

// New returns a Kit reading vendor cfg.Vendor's stream on nc into store.
// nc must be connected as the vendor's user with the vendor's inbox prefix
// (Connect does both).
func New(nc *nats.Conn, store Store, cfg Config) (*Kit, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || store == nil {
		return nil, errors.New("vendorkit: a connection and a store are required")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("vendorkit: %w", err)
	}
	return &Kit{cfg: cfg.withDefaults(), nc: nc, js: js, store: store, gen: -1, tenants: make(map[string]*TenantStatus),
		resyncs: make(map[string]*resyncWant), wake: make(chan struct{}, 1)}, nil
}

// Stream is the name of the vendor's stream.
func (k *Kit) Stream() string { return "VENDOR_" + k.cfg.Vendor }

// Status returns what the kit knows of tenant; false if it has applied
// nothing of it since it started.
func (k *Kit) Status(tenant string) (TenantStatus, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, ok := k.tenants[tenant]
	if !ok {
		return TenantStatus{Tenant: tenant}, false
	}
	return *st, true
}

// tenant returns tenant's status, creating it. k.mu must be held.
func (k *Kit) tenant(tenant string) *TenantStatus {
	st := k.tenants[tenant]
	if st == nil {
		st = &TenantStatus{Tenant: tenant}
		k.tenants[tenant] = st
	}
	return st
}

// Run reads and applies the vendor's events until ctx is cancelled, then
// returns nil. It returns an error only when its first attempt to make its
// consumer fails (no such stream, or the user may not read it: a
// configuration to fix). Every later error (the connection, the server, the
// store) is logged and retried: Run reads again from the store's position
// after Config.RetryWait.
func (k *Kit) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); k.resyncLoop(ctx) }()
	defer wg.Wait()
	wait := k.cfg.RetryWait
	for first := true; ; first = false {
		progressed, err := k.read(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var setup setupError
		if first && errors.As(err, &setup) {
			return err
		}
		if progressed {
			wait = k.cfg.RetryWait
		}
		k.cfg.Logger.Warn("vendorkit: reading again from the store's position", "err", err, "after", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(2*wait, 30*k.cfg.RetryWait)
	}
}

// setupError is a failure to make the consumer.
type setupError struct{ err error }

func (e setupError) Error() string { return e.err.Error() }
func (e setupError) Unwrap() error { return e.err }

// errOutOfOrder ends a reading: a message came that is not the next one.
var errOutOfOrder = errors.New("vendorkit: a message out of order")

// reader is one reading of the stream: from a new consumer at the store's
// position up to the first error.
type reader struct {
	k          *Kit
	it         jetstream.MessagesContext
	pos        uint64 // the store's position
	startPos   uint64 // the store's position when the reading began
	lastSeq    uint64 // the last stream sequence accepted
	reconnects uint64 // the connection's reconnections when the reading began
	batch      []Event
	ackLast    jetstream.Msg // the last message accepted: acknowledges everything up to it
	progressed bool
}

// read reads from the store's position until an error, which it returns;
// progressed says whether it applied anything.
func (k *Kit) read(ctx context.Context) (progressed bool, err error) {
	pos, err := k.store.Position(ctx)
	if err != nil {
		return false, fmt.Errorf("vendorkit: the store's position: %w", err)
	}
	cons, err := k.consumer(ctx, pos)
	if err != nil {
		return false, setupError{err}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4*k.cfg.BatchSize), jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return false, fmt.Errorf("vendorkit: read consumer %s: %w", cons.CachedInfo().Name, err)
	}
	defer it.Stop()
	r := &reader{k: k, it: it, pos: pos, startPos: pos, lastSeq: pos, reconnects: k.nc.Stats().Reconnects}
	k.cfg.Logger.Debug("vendorkit: reading", "stream", k.Stream(), "from", pos+1)
	err = r.run(ctx)
	return r.progressed, err
}

// consumerNames is how many names the kit's durable consumer takes in turn.
const consumerNames = 3

// consumerName is the name of the durable consumer of generation gen:
// Config.Consumer, '-' and gen modulo consumerNames.
func (k *Kit) consumerName(gen int) string {
	return fmt.Sprintf("%s-%d", k.cfg.Consumer, gen%consumerNames)
}

// consumer makes a new durable consumer that delivers from the stream
// sequence pos+1 with consumer sequences from 1, then deletes the one it
// replaces. The consumer takes consumerNames names in turn: nats-server can
// fail to create a durable consumer just deleted under the same name (its
// removal races the new one's first write), so a name is created again only
// two readings after it was deleted. At the first reading the kit looks for
// consumers an earlier run left, takes a name none has, and deletes them.
func (k *Kit) consumer(ctx context.Context, pos uint64) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream := k.Stream()
	if k.gen < 0 {
		if err := k.findLeftovers(ctx); err != nil {
			return nil, err
		}
	}
	name := k.consumerName(k.gen)
	cc := jetstream.ConsumerConfig{
		Durable: name, Description: "vendorkit of vendor " + k.cfg.Vendor,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckAllPolicy,
		AckWait: k.cfg.AckWait, MaxAckPending: k.cfg.MaxAckPending, MaxDeliver: -1,
		// A consumer a kit that stopped for good left behind goes away.
		InactiveThreshold: 24 * time.Hour,
	}
	if pos > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos+1
	}
	cons, err := k.js.CreateConsumer(ctx, stream, cc)
	if err != nil {
		return nil, fmt.Errorf("vendorkit: create consumer %s of %s: %w", name, stream, err)
	}
	k.gen++
	for _, old := range k.stale {
		if err := k.js.DeleteConsumer(ctx, stream, old); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			k.cfg.Logger.Warn("vendorkit: delete an earlier consumer", "consumer", old, "err", err)
		}
	}
	k.stale = append(k.stale[:0], name)
	return cons, nil
}

// findLeftovers notes the kit's consumers an earlier run left, to delete
// once the new one is made, and picks a generation whose name none has.
// When every name is taken it deletes them all and waits a moment.
func (k *Kit) findLeftovers(ctx context.Context) error {
	stream := k.Stream()
	k.stale, k.gen = k.stale[:0], -1
	for i := range consumerNames {
		name := k.consumerName(i)
		_, err := k.js.Consumer(ctx, stream, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			if k.gen < 0 {
				k.gen = i
			}
		case err != nil:
			return fmt.Errorf("vendorkit: look for consumer %s of %s: %w", name, stream, err)
		default:
			k.stale = append(k.stale, name)
		}
	}
	if k.gen >= 0 {
		return nil
	}
	for _, name := range k.stale {
		if err := k.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("vendorkit: delete consumer %s of %s: %w", name, stream, err)
		}
	}
	k.stale, k.gen = k.stale[:0], 0
	select {
	case <-time.After(time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// item is one message as the decoding goroutine hands it on, or the error
// that ended its reading.
type item struct {
	m   jetstream.Msg
	seq uint64
	ev  Event
	err error
}

// run applies the messages in batches until an error. A goroutine of its
// own reads and decodes them, checking the consumer sequences, while the
// batch before is applied.
func (r *reader) run(ctx context.Context) error {
	items := make(chan item, r.k.cfg.BatchSize)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.decode(ctx, items, done) }()
	defer func() { close(done); r.it.Stop(); wg.Wait() }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// The first message of a batch is waited for; the others only
		// while they keep coming.
		var it item
		select {
		case it = <-items:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := r.accept(ctx, it); err != nil {
			return r.flushWith(ctx, err)
		}
		timer.Reset(r.k.cfg.BatchWait)
	collect:
		for len(r.batch) < r.k.cfg.BatchSize {
			select {
			case it = <-items:
			case <-timer.C:
				break collect
			}
			if err := r.accept(ctx, it); err != nil {
				return r.flushWith(ctx, err)
			}
		}
		timer.Stop()
		if err := r.flush(ctx); err != nil {
			return err
		}
		if n := r.k.nc.Stats().Reconnects; n != r.reconnects {
			return fmt.Errorf("vendorkit: reconnected to the server (%d times)", n-r.reconnects)
		}
	}
}

// decode reads the messages, checks that their consumer sequences follow
// each other from 1, and hands them on decoded, until an error (handed on
// too) or done.
func (r *reader) decode(ctx context.Context, items chan<- item, done <-chan struct{}) {
	send := func(it item) bool {
		select {
		case items <- it:
			return true
		case <-done:
			return false
		}
	}
	next := uint64(1)
	for {
		m, err := r.it.Next(jetstream.NextContext(ctx))
		if err != nil {
			send(item{err: err})
			return
		}
		meta, err := m.Metadata()
		if err != nil {
			send(item{err: fmt.Errorf("vendorkit: a message without metadata: %w", err)})
			return
		}
		if meta.Sequence.Consumer != next {
			send(item{err: fmt.Errorf("%w: consumer sequence %d, want %d", errOutOfOrder, meta.Sequence.Consumer, next)})
			return
		}
		next++
		seq := meta.Sequence.Stream
		it := item{m: m, seq: seq}
		if seq > r.startPos { // below, a redelivery of what the store held at the start
			it.ev = Decode(r.k.cfg.Vendor, seq, &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		}
		if !send(it) {
			return
		}
	}
}

// flushWith applies what was accepted, and returns err (or the store's
// error).
func (r *reader) flushWith(ctx context.Context, err error) error {
	if ferr := r.flush(ctx); ferr != nil {
		return ferr
	}
	return err
}

// accept takes a message into the batch if it is the next one in stream
// order; a message already applied is only acknowledged with the batch. An
// export.completed applies the batch before it and checks the store.
func (r *reader) accept(ctx context.Context, it item) error {
	if it.err != nil {
		return it.err
	}
	if it.seq <= r.pos {
		r.ackLast = it.m // applied already: a redelivery
		return nil
	}
	if it.seq <= r.lastSeq || it.ev.Seq != it.seq {
		return fmt.Errorf("%w: stream sequence %d again before %d is applied", errOutOfOrder, it.seq, r.lastSeq)
	}
	r.lastSeq = it.seq
	ev := it.ev
	if ev.Kind == KindUnknown {
		r.k.cfg.Logger.Warn("vendorkit: a message this version does not read changes nothing",
			"seq", ev.Seq, "subject", ev.Subject, "type", ev.Type, "err", ev.Err)
	}
	if ev.Kind == KindExportCompleted {
		if err := r.flush(ctx); err != nil {
			return err
		}
		if err := r.k.check(ctx, ev); err != nil {
			return err
		}
	}
	r.batch = append(r.batch, ev)
	r.ackLast = it.m
	return nil
}

// flush applies the batch and acknowledges it. The batch in hand is
// applied even when ctx is cancelled (a stop finishes it); a batch the store
// refuses is dropped, and read again from the store's position.
func (r *reader) flush(ctx context.Context) error {
	if len(r.batch) > 0 {
		if err := r.k.store.Apply(context.WithoutCancel(ctx), r.batch); err != nil {
			first, last := r.batch[0].Seq, r.batch[len(r.batch)-1].Seq
			clear(r.batch)
			r.batch, r.ackLast = r.batch[:0], nil
			return fmt.Errorf("vendorkit: apply events %d to %d: %w", first, last, err)
		}
		r.pos = r.batch[len(r.batch)-1].Seq
		r.progressed = true
		r.k.applied(r.batch)
		clear(r.batch)
		r.batch = r.batch[:0]
	}
	if r.ackLast != nil {
		_ = r.ackLast.Ack() // a lost ack is a redelivery, skipped as applied
		r.ackLast = nil
	}
	return nil
}

// applied notes a batch in the tenants' status.
func (k *Kit) applied(batch []Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ev := range batch {
		if ev.Tenant == "" {
			continue
		}
		st := k.tenant(ev.Tenant)
		switch ev.Kind {
		case KindChange:
			st.Applied++
		case KindExportStarted:
			st.Unlinked = false
			if ev.Boundary.Resync {
				st.ResyncID = ""
				delete(k.resyncs, ev.Tenant)
				st.ResyncPending = false
			}
		case KindTenantUnlinked:
			st.Unlinked = true
			delete(k.resyncs, ev.Tenant)
			st.ResyncPending, st.ResyncID = false, ""
		}
	}
}

// check compares the store with an export.completed, the events before it
// applied, and asks for a resync when they differ.
func (k *Kit) check(ctx context.Context, ev Event) error {
	sum, err := k.store.Summary(ctx, ev.Tenant)
	if err != nil {
		return fmt.Errorf("vendorkit: the store's summary of tenant %s: %w", ev.Tenant, err)
	}
	c := ExportCheck{Tenant: ev.Tenant, ExportID: ev.Boundary.ExportID, Resync: ev.Boundary.Resync, Seq: ev.Seq,
		Summary: sum, Mismatch: sum.Verify(ev.Boundary)}
	k.mu.Lock()
	st := k.tenant(ev.Tenant)
	st.LastExport, st.Mismatch = c.ExportID, c.Mismatch
	if c.Mismatch == "" {
		delete(k.resyncs, ev.Tenant)
		st.ResyncPending = false
	}
	k.mu.Unlock()
	if c.Mismatch != "" {
		k.cfg.Logger.Warn("vendorkit: the store differs from export.completed; asking for a resync",
			"tenant", ev.Tenant, "export", c.ExportID, "differs", c.Mismatch)
		k.wantResync(ev.Tenant, fmt.Sprintf("export %s: %s", c.ExportID, c.Mismatch))
	} else {
		k.cfg.Logger.Debug("vendorkit: export checked", "tenant", ev.Tenant, "export", c.ExportID, "resync", c.Resync)
	}
	if k.cfg.OnExport != nil {
		k.cfg.OnExport(c)
	}
	return nil
}
