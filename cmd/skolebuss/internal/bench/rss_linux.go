package bench

import (
	"os"
	"strconv"
	"strings"
)

// peakRSSOf is VmHWM of /proc/<pid>/status in bytes ("self" for this
// process), 0 if it cannot be read (the process is gone).
//
// Not ru_maxrss from wait4: Go starts a child with vfork semantics, so the
// child runs on the parent's address space until exec, and Linux carries
// that address space's high-water mark into the child's ru_maxrss. The
// child's figure is then at least the parent's RSS, which here holds the
// server and the sandbox. VmHWM belongs to the address space exec made.
func peakRSSOf(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
