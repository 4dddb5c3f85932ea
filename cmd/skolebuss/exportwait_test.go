package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// syncBuf is a buffer written by a command while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExportWait: export --wait follows its own job, in the streams of a
// real JetStream server, to the export.completed event (exit 0) or to a
// dead letter (exit 1, with the sequence to replay), and ignores other
// exports of the tenant.
func TestExportWait(t *testing.T) {
	b, cfg := opsBus(t)
	ctx := context.Background()
	start := func(id string) (*syncBuf, <-chan int) {
		out, errs := &syncBuf{}, &syncBuf{}
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"export", "--config", cfg, "--tenant", opsTenant, "--id", id, "--wait", "--wait-timeout", "20s"}, out, errs)
		}()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "waiting for job "+id) {
			if time.Now().After(deadline) {
				t.Fatalf("export --wait did not start waiting: %q %q", out.String(), errs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return out, code
	}
	publish := func(v messages.Codable) uint64 {
		t.Helper()
		m, err := messages.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := b.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	boundary := func(export string, p messages.Phase) messages.Boundary {
		bd := messages.Boundary{ID: messages.BoundaryID(opsTenant, export, p), Tenant: opsTenant, ExportID: export, Phase: p,
			Time: time.Now(), Counts: map[pifu.Entity]messages.Counts{pifu.EntityPerson: {Created: 3, Total: 3}}}
		if p == messages.PhaseCompleted {
			bd.Checksum = "xxh64sum:00000000000000ff"
		}
		return bd
	}

	out, code := start("ops-applied")
	publish(boundary("someone-else", messages.PhaseCompleted)) // another export of the tenant
	publish(boundary("ops-applied", messages.PhaseStarted))
	publish(boundary("ops-applied", messages.PhaseCompleted))
	select {
	case c := <-code:
		if c != 0 || !strings.Contains(out.String(), "export ops-applied started: 3 changes") ||
			!strings.Contains(out.String(), "export ops-applied applied: created 3, updated 0, deleted 0; 3 person; state xxh64sum:00000000000000ff") {
			t.Errorf("applied: exit %d\n%s", c, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("export --wait did not see its export.completed:\n%s", out.String())
	}

	out, code = start("ops-failed")
	job := messages.ExportJob{JobID: "ops-failed", Tenant: opsTenant, Application: "skolebuss-demo",
		Reason: messages.ReasonDemand, RequestedAt: time.Now()}
	failed, err := messages.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	seq := publish(messages.NewDeadLetter("fetch", opsTenant, failed, failure.Permanentf("forbidden", "export API answered 403"), 1, "", time.Now()))
	select {
	case c := <-code:
		if c != 1 || !strings.Contains(out.String(), "dead-lettered by the fetch stage after 1 attempt(s): forbidden") ||
			!strings.Contains(out.String(), "skolebuss replay --seq "+strconv.FormatUint(seq, 10)) {
			t.Errorf("dead-lettered: exit %d\n%s", c, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("export --wait did not see its dead letter:\n%s", out.String())
	}
}
