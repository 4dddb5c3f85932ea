package rostergen

import (
	"context"
	"io"
	"runtime"
	"testing"
)

func newPreset(tb testing.TB, preset string, seed uint64) *Municipality {
	tb.Helper()
	sz, err := Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := New(Spec{TenantID: "3f1c2a9e-6b7d-4e2f-9a41-0c5d8e7f6a01", Name: "Fjordvik kommune", Seed: seed, Sizes: sz})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkWriteExport writes whole exports into io.Discard. It reports the
// throughput (MB/s) and, per size, the peak heap in use and the heap
// obtained from the OS, sampled while writing.
func BenchmarkWriteExport(b *testing.B) {
	for _, preset := range []string{"medium", "large"} {
		b.Run(preset, func(b *testing.B) {
			m := newPreset(b, preset, 7)
			n, err := m.WriteExport(context.Background(), io.Discard, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n)
			w := &heapSampler{}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Alternate generations so each write also computes a state.
				if _, err := m.WriteExport(context.Background(), w, uint64(i%2)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(w.peakInuse)/(1<<20), "peak-heap-inuse-MiB")
			b.ReportMetric(float64(w.peakSys)/(1<<20), "peak-heap-sys-MiB")
		})
	}
}

// heapSampler discards what is written and samples the heap every 256
// writes.
type heapSampler struct {
	writes             int
	peakInuse, peakSys uint64
}

func (h *heapSampler) Write(p []byte) (int, error) {
	if h.writes%256 == 0 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peakInuse = max(h.peakInuse, ms.HeapInuse)
		h.peakSys = max(h.peakSys, ms.HeapSys)
	}
	h.writes++
	return len(p), nil
}

// BenchmarkNextGeneration measures computing the state of generation N+1
// from the cached N (the sandbox's step when its generation advances).
func BenchmarkNextGeneration(b *testing.B) {
	m := newPreset(b, "large", 7)
	gen := uint64(0)
	for b.Loop() {
		gen++
		if _, err := m.stateAt(context.Background(), gen); err != nil {
			b.Fatal(err)
		}
	}
}
