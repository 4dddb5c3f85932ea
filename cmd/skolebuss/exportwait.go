package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// errDeadLettered is the outcome of an export that went to the dead-letter
// stream instead of being applied.
var errDeadLettered = errors.New("dead-lettered")

// waitExport follows job id of tenant until its export is applied (the
// export.completed event in the LMS stream) or a stage dead-letters it,
// reading both streams from since. It prints what happens to w.
func waitExport(ctx context.Context, js jetstream.JetStream, tenant, id string, since time.Time, timeout time.Duration, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type seen struct {
		b   *messages.Boundary
		dl  *messages.DeadLetter
		seq uint64
		err error
	}
	ch := make(chan seen, 16)
	follow := func(stream, filter string, handle func(jetstream.Msg) (seen, bool)) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
		cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since})
		if err != nil {
			return fmt.Errorf("follow %s: %w", stream, err)
		}
		go func() {
			for ctx.Err() == nil {
				m, err := cons.Next(jetstream.FetchMaxWait(time.Second))
				if err != nil {
					if errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || ctx.Err() != nil {
						continue
					}
					select {
					case ch <- seen{err: fmt.Errorf("follow %s: %w", stream, err)}:
					case <-ctx.Done():
					}
					return
				}
				if s, ok := handle(m); ok {
					select {
					case ch <- s:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		return nil
	}
	asNATS := func(m jetstream.Msg) *nats.Msg {
		return &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
	}
	boundaries, err := messages.TenantBoundariesFilter(tenant)
	if err != nil {
		return err
	}
	deadLetters, err := messages.DLQFilter("", tenant)
	if err != nil {
		return err
	}
	if err := follow(bus.StreamLMS, boundaries, func(m jetstream.Msg) (seen, bool) {
		b, err := messages.Decode[messages.Boundary](asNATS(m))
		return seen{b: &b}, err == nil && b.ExportID == id
	}); err != nil {
		return err
	}
	if err := follow(bus.StreamDLQ, deadLetters, func(m jetstream.Msg) (seen, bool) {
		dl, err := messages.Decode[messages.DeadLetter](asNATS(m))
		if err != nil || failedJobID(dl) != id {
			return seen{}, false
		}
		meta, _ := m.Metadata()
		var seq uint64
		if meta != nil {
			seq = meta.Sequence.Stream
		}
		return seen{dl: &dl, seq: seq}, true
	}); err != nil {
		return err
	}

	fmt.Fprintf(w, "waiting for job %s (Ctrl-C stops waiting, not the job) ...\n", id)
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("job %s: neither applied nor dead-lettered within %s; it may still be queued or in progress", id, timeout)
			}
			return ctx.Err()
		case s := <-ch:
			switch {
			case s.err != nil:
				return s.err
			case s.dl != nil:
				fmt.Fprintf(w, "dead-lettered by the %s stage after %d attempt(s): %s: %s\n", s.dl.Stage, s.dl.Attempts, s.dl.Reason, s.dl.Error)
				fmt.Fprintf(w, "dead letter %d: skolebuss replay --seq %d sends it through again\n", s.seq, s.seq)
				return fmt.Errorf("job %s: %w (%s)", id, errDeadLettered, s.dl.Reason)
			case s.b.Phase == messages.PhaseStarted:
				fmt.Fprintf(w, "export %s started: %d changes to publish\n", id, changeCount(s.b.Counts))
			case s.b.Phase == messages.PhaseCompleted:
				fmt.Fprintf(w, "export %s applied: %s; state %s\n", id, countsLine(s.b.Counts), s.b.Checksum)
				return nil
			}
		}
	}
}

// failedJobID is the job id of the message a dead letter holds: an export
// job, or a fetched export (whose export id is its job's id).
func failedJobID(dl messages.DeadLetter) string {
	m := &nats.Msg{Subject: dl.Message.Subject, Header: nats.Header(dl.Message.Headers), Data: dl.Message.Data}
	if _, err := messages.ParseJobSubject(m.Subject); err == nil {
		if job, err := messages.Decode[messages.ExportJob](m); err == nil {
			return job.JobID
		}
	}
	if _, err := messages.ParseFetchedSubject(m.Subject); err == nil {
		if fe, err := messages.Decode[messages.FetchedExport](m); err == nil {
			return fe.JobID
		}
	}
	return ""
}

func changeCount(counts map[pifu.Entity]messages.Counts) int {
	n := 0
	for _, c := range counts {
		n += c.Created + c.Updated + c.Deleted
	}
	return n
}

// countsLine is "created 3, updated 1, deleted 0; 2 orgs, 18 groups, ...".
func countsLine(counts map[pifu.Entity]messages.Counts) string {
	var c messages.Counts
	for _, e := range counts {
		c.Created, c.Updated, c.Deleted = c.Created+e.Created, c.Updated+e.Updated, c.Deleted+e.Deleted
	}
	s := fmt.Sprintf("created %d, updated %d, deleted %d;", c.Created, c.Updated, c.Deleted)
	sep := ""
	for _, e := range pifu.Entities {
		if n, ok := counts[e]; ok {
			s += fmt.Sprintf("%s %d %s", sep, n.Total, e)
			sep = ","
		}
	}
	return s
}
