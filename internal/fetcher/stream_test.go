package fetcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// The export is streamed into the object store, never held whole: while the
// upstream's body still trickles in, the object store already holds a good
// part of it, chunk by chunk, and at the end it holds all of it.
func TestExportStreamedIntoTheObjectStore(t *testing.T) {
	e := newEnv(t, benchSandbox())
	size := len(e.direct(t, nordstrand))
	// The body takes about two seconds.
	e.setFaults(t, nordstrand, sandbox.Faults{SlowBody: size/2 + 1})
	f, err := New(e.config(nil), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	objects, err := e.bus.JS.Stream(context.Background(), "OBJ_exports")
	if err != nil {
		t.Fatal(err)
	}
	storedBytes := func() uint64 {
		info, err := objects.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Bytes
	}
	job := messages.ExportJob{JobID: "stream-1", Tenant: nordstrand, Application: demoApp, Reason: messages.ReasonDemand, RequestedAt: time.Now()}
	_, m, err := messages.EncodeWatermill(job)
	if err != nil {
		t.Fatal(err)
	}
	before := storedBytes()
	done := make(chan error, 1)
	go func() { done <- f.Handle(context.Background(), m) }()
	// While the fetch still runs, the object store already has a good part
	// of the export (compressed): the bytes are counted before the fetch is
	// seen running.
	var midway uint64
	waitfor.Condition(t, 10*time.Second, func() error {
		midway = storedBytes() - before
		select {
		case err := <-done:
			t.Fatalf("the fetch ended (%v) and the object store held %d bytes of the %d-byte body while it ran: not streamed, or the body was not slow and the test proves nothing", err, midway, size)
		default:
		}
		if midway < 1<<20 {
			return fmt.Errorf("the object store holds %d bytes of the %d-byte body", midway, size)
		}
		return nil
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := e.bus.Stores.Exports.GetInfo(context.Background(), ObjectName(job))
	if err != nil || info.Size != uint64(size) {
		t.Fatalf("stored export: %+v, %v; want %d bytes", info, err, size)
	}
	t.Logf("%d bytes in the object store midway through a %d-byte export", midway, size)
}
