package publisher

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
)

// A publish that no stream stores fails the export transiently, and the
// sender stops taking messages after it.
func TestSenderFailsOnAFailedPublish(t *testing.T) {
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{Embedded: bus.EmbeddedConfig{DataDir: t.TempDir(), Port: -1}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	js, err := jetstream.New(b.Conn, jetstream.WithPublishAsyncMaxPending(16))
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(js, 16, 5*time.Second)
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
	s2 := newSender(js, 16, 5*time.Second)
	s2.abandon(failure.Transientf("x", "gone"))
	if err := s2.send(ctx, &nats.Msg{Subject: "lms.t1.person.created", Data: []byte("{}")}, what{}); err == nil {
		t.Error("an abandoned sender took a message")
	}
}
