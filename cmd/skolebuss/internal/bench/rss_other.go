//go:build !linux

package bench

// peakRSSOf is 0 (unknown) outside Linux, which alone has
// /proc/<pid>/status.
func peakRSSOf(string) int64 { return 0 }
