package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// A publish that no stream stores fails the export transiently, and the
// sender stops taking messages after it.
func TestSenderFailsOnAFailedPublish(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	s := mustSender(t, b.Conn, 16, 5*time.Second)
	if err := s.send(ctx, &nats.Msg{Subject: "lms.t1.person.created", Data: []byte("{}")}, what{seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.send(ctx, &nats.Msg{Subject: "nowhere.at.all", Data: []byte("{}")}, what{seq: 2, entity: "person", op: "created"}); err != nil {
		t.Fatal(err)
	}
	stored, _, err := s.wait(ctx)
	if stored != 1 || failure.ClassOf(err) != failure.Transient || failure.ReasonOf(err) != "publish_failed" {
		t.Fatalf("stored %d, err %v (reason %s)", stored, err, failure.ReasonOf(err))
	}
	if want := "change 2 (person created)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	s2 := mustSender(t, b.Conn, 16, 5*time.Second)
	s2.abandon(failure.Transientf("x", "gone"))
	if err := s2.send(ctx, &nats.Msg{Subject: "lms.t1.person.created", Data: []byte("{}")}, what{}); err == nil {
		t.Error("an abandoned sender took a message")
	}
}

// Messages come back for reuse once acknowledged; with a small window and
// many more messages than a batch, most are reused, and every stored message
// is still exactly the event it was sent as.
func TestSenderReusesAcknowledgedMessages(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	const window, n = 32, 785
	const tenant = "1a2b3c4d-0000-4000-8000-00000000e002"
	at := time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC)
	enc, err := messages.NewEventEncoder(tenant, "e1", at, nats.Header{messages.HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	if err != nil {
		t.Fatal(err)
	}
	s := mustSender(t, b.Conn, window, 5*time.Second)
	seen := map[*nats.Msg]bool{}
	reused := 0
	for i := range n {
		m := s.msg()
		if seen[m] {
			reused++
		}
		seen[m] = true
		e := pifu.Entities[i%len(pifu.Entities)]
		obj := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", i%97))
		if err := enc.EncodeTo(m, messages.Event{ID: fmt.Sprintf("id-%d", i), Tenant: tenant, ExportID: "e1", Entity: e,
			Op: messages.OpCreated, Key: fmt.Sprintf("k-%d", i), Time: at, Object: json.RawMessage(obj)}); err != nil {
			t.Fatal(err)
		}
		if err := s.send(ctx, m, what{seq: i + 1}); err != nil {
			t.Fatal(err)
		}
	}
	stored, dups, err := s.wait(ctx)
	if err != nil || stored != n || dups != 0 {
		t.Fatalf("stored %d, %d duplicates, err %v; sent %d", stored, dups, err, n)
	}
	if reused == 0 {
		t.Errorf("no message was reused in %d sends with a window of %d", n, window)
	}
	stream, err := b.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		raw, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := messages.Decode[messages.Event](&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		var obj struct{ N int }
		if err := json.Unmarshal(ev.Object, &obj); err != nil {
			t.Fatal(err)
		}
		if ev.ID != fmt.Sprintf("id-%d", i) || ev.Key != fmt.Sprintf("k-%d", i) || obj.N != i ||
			ev.Entity != pifu.Entities[i%len(pifu.Entities)] || raw.Header.Get(nats.MsgIdHdr) != ev.ID {
			t.Fatalf("message %d: %s %s %s %s", i+1, ev.ID, ev.Entity, ev.Key, ev.Object)
		}
	}
}

func mustSender(t *testing.T, nc *nats.Conn, window int, timeout time.Duration) *sender {
	t.Helper()
	s, err := newSender(nc, window, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A publish that nothing acknowledges (a plain subscriber takes it and
// never replies) fails the export once no acknowledgement has come for the
// ack timeout, and the sender's reply subscription is gone afterwards.
func TestSenderTimesOutWithoutAcknowledgement(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	sub, err := b.Conn.SubscribeSync("silent.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	subs := b.Conn.NumSubscriptions()
	s := mustSender(t, b.Conn, 16, 300*time.Millisecond)
	if err := s.send(ctx, &nats.Msg{Subject: "lms.t1.person.created", Data: []byte("{}")}, what{seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.send(ctx, &nats.Msg{Subject: "silent.x", Data: []byte("{}")}, what{seq: 2}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stored, _, err := s.wait(ctx)
	if failure.ReasonOf(err) != "publish_ack_timeout" || failure.ClassOf(err) != failure.Transient || stored != 1 {
		t.Fatalf("stored %d, err %v", stored, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the timeout took %s", d)
	}
	if n := b.Conn.NumSubscriptions(); n != subs {
		t.Errorf("%d subscriptions after wait, %d before the sender", n, subs)
	}
}
