package publisher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
)

// The LMS stream is the record of how far an export got. One tenant's
// exports are published one at a time, each from its export.started on, so
// when the tenant's last message in the stream belongs to the export about
// to be published, this is a redo: an earlier attempt stored export.started
// and some of the changes (perhaps all, and export.completed too), then died
// or failed before the snapshot was stored. The redo sends only what the
// stream does not hold, whenever it happens: the duplicate window plays no
// part in it.
//
// The redo looks for the changes the stream holds by id rather than by
// position: an asynchronous publish that failed may have left a gap with
// later changes stored after it, so "everything up to the last stored one"
// could skip a change that was never stored.

// resume is what the LMS stream already holds of one export.
type resume struct {
	// started: the stream holds the export's export.started, which is not
	// sent again.
	started bool
	// completed: it holds the export's export.completed, with checksum:
	// every change is stored, nothing is sent again.
	completed bool
	checksum  string
	// stored are the ids of the change events the stream holds after the
	// export's export.started (nil when there are none or completed is
	// set); skipped counts the changes emitted that were among them.
	stored  map[[16]byte]struct{}
	skipped int
}

// skip reports whether the change with id is already in the stream (and
// counts it). It costs one nil check when the export is not a redo.
func (r *resume) skip(id string) (bool, error) {
	if r.completed {
		r.skipped++
		return true, nil
	}
	if r.stored == nil {
		return false, nil
	}
	k, err := eventKey(id)
	if err != nil {
		return false, failure.New(failure.Permanent, failure.ReasonInvalidEvent, err)
	}
	if _, ok := r.stored[k]; ok {
		r.skipped++
		return true, nil
	}
	return false, nil
}

// check fails when the stream holds changes of the export that this run
// did not compute: the stream and the tenant's snapshot disagree, and
// completing the export would give the vendors a state that is not the
// snapshot's.
func (r *resume) check(tenant, exportID string) error {
	if r.stored != nil && r.skipped != len(r.stored) {
		return failure.Permanentf(failure.ReasonRedoMismatch,
			"redo of export %s of tenant %s: the LMS stream holds %d of its changes, %d of them among the changes computed now",
			exportID, tenant, len(r.stored), r.skipped)
	}
	return nil
}

// checkCompleted fails when the export.completed the stream holds has
// another checksum than the state this run computed.
func (r *resume) checkCompleted(tenant, exportID, checksum string) error {
	if r.checksum != checksum {
		return failure.Permanentf(failure.ReasonRedoMismatch,
			"redo of export %s of tenant %s: the LMS stream's export.completed says %s, the state computed now is %s",
			exportID, tenant, r.checksum, checksum)
	}
	return nil
}

// eventKey is an event id (32 hex digits) as a map key.
func eventKey(id string) (k [16]byte, err error) {
	if len(id) != 2*len(k) {
		return k, fmt.Errorf("event id %q is not %d hex digits", id, 2*len(k))
	}
	if _, err := hex.Decode(k[:], []byte(id)); err != nil {
		return k, fmt.Errorf("event id %q: %w", id, err)
	}
	return k, nil
}

// lmsStream is the LMS stream's handle, looked up once.
type lmsStream struct {
	mu sync.Mutex
	s  jetstream.Stream
}

func (l *lmsStream) get(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := js.Stream(ctx, bus.StreamLMS)
	if err != nil {
		return nil, err
	}
	l.s = s
	return s, nil
}

// findResume looks in the LMS stream for what it holds of export exportID
// of tenant: one lookup of the tenant's last message when the export is not
// a redo. On a redo that stopped among the changes it reads the tenant's
// messages from the export's export.started to that last message.
func (p *Publisher) findResume(ctx context.Context, tenant, exportID string) (resume, error) {
	readErr := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("look up what the LMS stream holds of export %s of tenant %s: %w", exportID, tenant, ctx.Err())
		}
		return failure.New(failure.Transient, failure.ReasonStreamRead,
			fmt.Errorf("look up what the LMS stream holds of export %s of tenant %s: %w", exportID, tenant, err))
	}
	s, err := p.lms.get(ctx, p.js)
	if err != nil {
		return resume{}, readErr(err)
	}
	filter, err := messages.TenantEventsFilter(tenant)
	if err != nil {
		return resume{}, failure.New(failure.Permanent, failure.ReasonInvalidSubject, err)
	}
	last, err := s.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return resume{}, nil // the tenant's first export
	}
	if err != nil {
		return resume{}, readErr(err)
	}
	l, err := messages.ParseLMSSubject(last.Subject)
	if err != nil {
		return resume{}, failure.New(failure.Permanent, failure.ReasonInvalidSubject, err)
	}
	if l.IsBoundary() {
		if last.Header.Get(messages.HeaderMsgID) != messages.BoundaryID(tenant, exportID, l.Phase) {
			return resume{}, nil // another export's: this one is not a redo
		}
		if l.Phase == messages.PhaseStarted {
			return resume{started: true}, nil
		}
		b, err := messages.Decode[messages.Boundary](&nats.Msg{Subject: last.Subject, Header: last.Header, Data: last.Data})
		if err != nil {
			return resume{}, err
		}
		return resume{started: true, completed: true, checksum: b.Checksum}, nil
	}
	ev, err := messages.Decode[messages.Event](&nats.Msg{Subject: last.Subject, Header: last.Header, Data: last.Data})
	if err != nil {
		return resume{}, err
	}
	if ev.ExportID != exportID {
		return resume{}, nil
	}

	// A redo among the changes: the export's export.started is the
	// tenant's last one, and the changes stored are those after it.
	startSubj, err := messages.BoundarySubject(tenant, messages.PhaseStarted)
	if err != nil {
		return resume{}, failure.New(failure.Permanent, failure.ReasonInvalidSubject, err)
	}
	start, err := s.GetLastMsgForSubject(ctx, startSubj)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return resume{}, readErr(err)
	}
	if err != nil || start.Header.Get(messages.HeaderMsgID) != messages.BoundaryID(tenant, exportID, messages.PhaseStarted) ||
		start.Sequence > last.Sequence {
		return resume{}, failure.Permanentf(failure.ReasonRedoMismatch,
			"redo of export %s of tenant %s: the tenant's last event (sequence %d) is the export's, its last export.started is not",
			exportID, tenant, last.Sequence)
	}
	stored, err := p.storedChanges(ctx, filter, start.Sequence+1, last.Sequence)
	if err != nil {
		if fe := (*failure.Error)(nil); errors.As(err, &fe) {
			return resume{}, err
		}
		return resume{}, readErr(err)
	}
	return resume{started: true, stored: stored}, nil
}

// storedChanges reads the messages matching filter from sequence from to
// to and returns the ids of the change events among them.
func (p *Publisher) storedChanges(ctx context.Context, filter string, from, to uint64) (map[[16]byte]struct{}, error) {
	ids := make(map[[16]byte]struct{}, int(min(to-from+1, 1<<20)))
	oc, err := p.js.OrderedConsumer(ctx, bus.StreamLMS, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, err
	}
	it, err := oc.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if seq := meta.Sequence.Stream; seq > to {
			return ids, nil
		}
		l, err := messages.ParseLMSSubject(m.Subject())
		if err != nil {
			return nil, failure.New(failure.Permanent, failure.ReasonInvalidSubject, err)
		}
		if !l.IsBoundary() {
			k, err := eventKey(m.Headers().Get(messages.HeaderMsgID))
			if err != nil {
				return nil, failure.New(failure.Permanent, failure.ReasonInvalidEvent,
					fmt.Errorf("LMS stream sequence %d: %w", meta.Sequence.Stream, err))
			}
			ids[k] = struct{}{}
		}
		if meta.Sequence.Stream == to {
			return ids, nil
		}
	}
}
