//go:build serverrace

package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

// TestDurableRecreatedAtOnce reproduces a race in nats-server (seen with
// v2.15.2): a durable consumer deleted and at once created again under the
// same name, with acknowledgements just made, can fail to be created with
// "API error: code=500 err_code=10012 description=rename
// .../obs/<name>/o.dat.tmp .../obs/<name>/o.dat: no such file or
// directory": the deleted consumer's removal of its directory runs into the
// new consumer's first state write. It fails in about one run in three of
// 500 rounds on a 2-core machine, so it is not in the default test run:
//
//	go test -tags serverrace -count=3 -run TestDurableRecreatedAtOnce ./internal/bus/
//
// skolebuss does not delete and re-create a durable consumer under one name:
// the in-memory copies (the demo's vendors, skolebuss watch) read on ordered
// consumers, which are ephemeral and named afresh each time.
func TestDurableRecreatedAtOnce(t *testing.T) {
	s := bustest.RunServer(t)
	_, js := bustest.Connect(t, s)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		if _, err := js.Publish(ctx, "s.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		c, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("round %d: create the durable consumer again: %v", i, err)
		}
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			_ = m.Ack()
		}
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		if err := js.DeleteConsumer(ctx, "S", "d"); err != nil {
			t.Fatalf("round %d: delete: %v", i, err)
		}
	}
}
