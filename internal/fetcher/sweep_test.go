package fetcher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

// TestSweepPurgesAbandonedDownloads: a download whose connection dies
// midway (as a killed fetcher's does) leaves chunks no object names; the
// sweep purges them once they are old enough, and leaves whole exports and
// younger chunks alone.
func TestSweepPurgesAbandonedDownloads(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	whole := bytes.Repeat([]byte("<person/>"), 100_000)
	if _, err := b.Stores.Exports.Put(ctx, jetstream.ObjectMeta{Name: "t/whole.xml"}, bytes.NewReader(whole)); err != nil {
		t.Fatal(err)
	}

	// The abandoned download, on a connection of its own that dies.
	nc, err := nats.Connect(b.Conn.ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := js.ObjectStore(ctx, bus.ObjectExports)
	if err != nil {
		t.Fatal(err)
	}
	body, feed := io.Pipe()
	put := make(chan error, 1)
	go func() {
		_, err := store.Put(ctx, jetstream.ObjectMeta{Name: "t/killed.xml"}, body)
		put <- err
	}()
	if _, err := feed.Write(bytes.Repeat([]byte("<group/>"), 100_000)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.JS.Stream(ctx, exportsStream)
	if err != nil {
		t.Fatal(err)
	}
	chunkSubjects := func() map[string]uint64 {
		t.Helper()
		subs, err := subjects(ctx, stream, chunkPrefix+">")
		if err != nil {
			t.Fatal(err)
		}
		return subs
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(chunkSubjects()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned download stored no chunks: %v", chunkSubjects())
		}
		time.Sleep(10 * time.Millisecond)
	}
	nc.Close()
	feed.CloseWithError(errors.New("the fetcher died"))
	if err := <-put; err == nil {
		t.Fatal("the abandoned download's Put succeeded")
	}
	if n := len(chunkSubjects()); n != 2 {
		t.Fatalf("%d chunk subjects after the failed download, want 2 (the whole export and the orphan)", n)
	}

	// Younger than the age: kept (it could be a download in progress).
	if got, err := SweepOrphanChunks(ctx, b.JS, time.Hour); err != nil || got.Uploads != 0 {
		t.Fatalf("sweep with age 1h: %+v, %v; want nothing purged", got, err)
	}
	time.Sleep(50 * time.Millisecond) // the orphan's chunks grow older than the age below
	got, err := SweepOrphanChunks(ctx, b.JS, 20*time.Millisecond)
	if err != nil || got.Uploads != 1 || got.Chunks == 0 {
		t.Fatalf("sweep: %+v, %v; want the one abandoned download purged", got, err)
	}
	left := chunkSubjects()
	info, err := b.Stores.Exports.GetInfo(ctx, "t/whole.xml")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[chunkPrefix+info.NUID] == 0 {
		t.Errorf("chunks left %v, want only the whole export's (%s)", left, info.NUID)
	}
	data, err := b.Stores.Exports.GetBytes(ctx, "t/whole.xml")
	if err != nil || !bytes.Equal(data, whole) {
		t.Errorf("the whole export after the sweep: %d bytes, %v", len(data), err)
	}
	if got, err := SweepOrphanChunks(ctx, b.JS, 0); err != nil || got.Uploads != 0 {
		t.Errorf("a second sweep: %+v, %v; want nothing left to purge", got, err)
	}
}
