package publisher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// TestExportReadOutlastsTheDefaultTimeout: jetstream's ObjectStore.Get ends
// a read at the JetStream context's default timeout when the caller's
// context has no deadline. An export read more slowly than that (a large
// municipality parsed as it is read) must still be read whole.
func TestExportReadOutlastsTheDefaultTimeout(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	muni, err := rostergen.New(rostergen.Spec{TenantID: "t", Name: "Fjordvik kommune", Seed: 7, Sizes: rostergen.Sizes{Schools: 4, Pupils: 3000, Staff: 300}})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := muni.WriteExport(ctx, &doc, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stores.Exports.Put(ctx, jetstream.ObjectMeta{Name: "slow"}, bytes.NewReader(doc.Bytes())); err != nil {
		t.Fatal(err)
	}

	const short = 300 * time.Millisecond
	js, err := jetstream.New(b.Conn, jetstream.WithDefaultTimeout(short))
	if err != nil {
		t.Fatal(err)
	}
	exports, err := js.ObjectStore(ctx, bus.ObjectExports)
	if err != nil {
		t.Fatal(err)
	}
	e, err := openExport(ctx, exports, "slow", "", "export_missing")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	records := 0
	start := time.Now()
	for {
		_, err := e.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %d records and %s: %v", records, time.Since(start).Round(time.Millisecond), err)
		}
		records++
		if records == 100 { // the read-ahead holds 2 MiB of the 14 MB
			time.Sleep(2 * short) // a parser slower than the default timeout, beyond the read-ahead
		}
	}
	if records < 1000 {
		t.Fatalf("read %d records, want the whole export", records)
	}
}
