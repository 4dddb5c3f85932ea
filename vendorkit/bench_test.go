package vendorkit_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/vendortest"
	"github.com/skolebuss/skolebuss/vendorkit"
)

// BenchmarkKitMemory measures the kit itself, into a MemoryStore: an
// export of 20,000 records and one of changes to it, read from an
// in-process server as the vendor's user, from the first message to the
// last applied.
func BenchmarkKitMemory(b *testing.B) {
	w := newWorldB(b)
	for range 2 {
		if _, err := w.feed.Export(context.Background(), w.js, tenantA, vendortest.ExportOptions{Size: 20000}); err != nil {
			b.Fatal(err)
		}
	}
	total := uint64(w.feed.Published)
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		store := vendorkit.NewMemoryStore()
		done := make(chan struct{})
		nc, err := vendorkit.Connect(w.s.ClientURL(), vendor, vendortest.VendorOptions(vendor)...)
		if err != nil {
			b.Fatal(err)
		}
		kit, err := vendorkit.New(nc, store, vendorkit.Config{Vendor: vendor, OnExport: func(c vendorkit.ExportCheck) {
			if c.Seq == total {
				close(done)
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan error, 1)
		go func() { stopped <- kit.Run(ctx) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatal("not applied in a minute")
		}
		cancel()
		<-stopped
		nc.Close()
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// On a shared machine the wall clock says little: the rate per second
	// of this process's CPU time (the kit, the store and the in-process
	// server together) says what one busy core does.
	b.ReportMetric(float64(total)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
