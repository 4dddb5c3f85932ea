package vendorkit_test

import (
	"context"
	"testing"

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
	cpu0 := vendortest.CPUTime()
	b.ResetTimer()
	for range b.N {
		vendortest.ApplyAll(b, w.s.ClientURL(), vendor, vendorkit.NewMemoryStore(), total)
	}
	vendortest.ReportRates(b, total, cpu0)
}
