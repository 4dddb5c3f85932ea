package fetcher

import (
	"context"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
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
	// Halfway through the body: the fetch is still running, and the object
	// store already has a good part of the export (compressed).
	time.Sleep(time.Second)
	midway := storedBytes() - before
	select {
	case err := <-done:
		t.Fatalf("the fetch ended within a second (%v): the body was not slow, the test proves nothing", err)
	default:
	}
	if midway < 1<<20 {
		t.Errorf("halfway through the %d-byte body, the object store held %d bytes of it: not streamed", size, midway)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	info, err := e.bus.Stores.Exports.GetInfo(context.Background(), ObjectName(job))
	if err != nil || info.Size != uint64(size) {
		t.Fatalf("stored export: %+v, %v; want %d bytes", info, err, size)
	}
	t.Logf("%d bytes in the object store midway through a %d-byte export", midway, size)
}
