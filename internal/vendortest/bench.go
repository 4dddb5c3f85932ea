package vendortest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/vendorkit"
)

// ApplyAll runs a kit as vendor's user on url into store until it has
// checked the export whose last message is at stream sequence last, then
// stops it; an export the kit finds not to match its counts or checksum
// fails tb, and so does a kit that has not got that far in two minutes.
func ApplyAll(tb testing.TB, url, vendor string, store vendorkit.Store, last uint64) {
	tb.Helper()
	nc, err := vendorkit.Connect(url, vendor, VendorOptions(vendor)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	done := make(chan struct{})
	kit, err := vendorkit.New(nc, store, vendorkit.Config{Vendor: vendor, OnExport: func(c vendorkit.ExportCheck) {
		if c.Mismatch != "" {
			tb.Errorf("export %s: %s", c.ExportID, c.Mismatch)
		}
		if c.Seq == last {
			close(done)
		}
	}})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- kit.Run(ctx) }()
	defer func() { cancel(); <-stopped }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		tb.Fatalf("the kit did not apply the stream up to sequence %d in 2 minutes", last)
	}
}

// CPUTime is the CPU time this process has used, user and system.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportRates reports b's rate of events applied per run: per second of
// the wall clock, and per second of this process's CPU time since cpu0 (a
// CPUTime taken when b's timer started). On a shared machine the wall clock
// says little; the CPU rate (the kit, the store and the in-process server
// together) says what one busy core does.
func ReportRates(b *testing.B, events uint64, cpu0 time.Duration) {
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events)*float64(b.N)/(CPUTime()-cpu0).Seconds(), "events/cpu-s")
}
