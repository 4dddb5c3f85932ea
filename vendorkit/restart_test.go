package vendorkit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/vendortest"
	"github.com/skolebuss/skolebuss/vendorkit"
)

// TestKitOrderAcrossServerRestart kills the server that hosts JetStream
// while the kit is in the middle of an export with thousands of messages in
// flight, starts it again on the same store, and checks that the kit never
// applied an event after a later one and that every tenant ends equal to the
// feed. Ten runs.
func TestKitOrderAcrossServerRestart(t *testing.T) {
	size := 5000
	if testing.Short() {
		size = 2000
	}
	for run := range 10 {
		t.Run(fmt.Sprint(run), func(t *testing.T) { restartRun(t, uint64(run), size) })
	}
}

func restartRun(t *testing.T, seed uint64, size int) {
	dir := t.TempDir()
	w := newWorld(t, func(o *server.Options) { o.StoreDir = dir })
	w.feed = vendortest.NewFeed(vendor, seed)
	for range 2 {
		w.export(t, tenantA, vendortest.ExportOptions{Size: size})
		w.export(t, tenantB, vendortest.ExportOptions{Size: size / 2})
	}
	total := uint64(w.feed.Published)

	// The server is shut down from the store's Apply once a third is
	// applied: the kit holds a pull's worth of messages, the server
	// thousands more unacknowledged.
	store := newRecorder()
	kill := make(chan struct{})
	killed := make(chan struct{})
	var once sync.Once
	store.onApply = func(last uint64) {
		if last > total/3 {
			once.Do(func() {
				close(kill)
				<-killed
			})
		}
	}
	runKit(t, w, store, vendorkit.Config{})
	select {
	case <-kill:
	case <-time.After(60 * time.Second):
		t.Fatal("the kit did not apply a third of the events in 60s")
	}
	addr := w.s.Addr().String()
	w.s.Shutdown()
	w.s.WaitForShutdown()
	close(killed)
	_, p := splitPort(t, addr)
	w.s = bustest.RunServer(t, vendortest.Users(vendor), func(o *server.Options) { o.StoreDir, o.Port = dir, p })

	// After the restart, one more export of each.
	w.export(t, tenantA, vendortest.ExportOptions{})
	w.export(t, tenantB, vendortest.ExportOptions{})
	waitMatched(t, w, store, tenantA, "export-2", 60*time.Second)
	waitMatched(t, w, store, tenantB, "export-2", 60*time.Second)
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.disorder) > 0 {
		t.Fatalf("events applied out of order: %v", store.disorder)
	}
	for _, c := range store.checks {
		if c.Mismatch != "" {
			t.Errorf("export %s of %s: %s", c.ExportID, c.Tenant, c.Mismatch)
		}
	}
}

func splitPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	var host string
	var port int
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			host = addr[:i]
			if _, err := fmt.Sscan(addr[i+1:], &port); err != nil {
				t.Fatal(err)
			}
			return host, port
		}
	}
	t.Fatalf("address %q has no port", addr)
	return "", 0
}
