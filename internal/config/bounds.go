package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The bounds of one export, unless a tenant sets its own.
//
// The largest municipality the sandbox generates (its "large" preset, about
// the size of Bergen) exports 272.5 MB of PIFU; Oslo has two to three times
// its pupils and staff, so about 550 to 820 MB. DefaultMaxExportSize, 1 GiB,
// holds Oslo with room to grow and still stops a body that never ends long
// before the object store fills. DefaultExportDeadline, 30 minutes, is that
// gibibyte at about 0.6 MB/s: every real export fits with a wide margin
// (the sandbox serves the large preset in well under a minute on loopback),
// while an upstream trickling a line a second gives up its fetch slot after
// half an hour instead of holding it until the upstream stops.
const (
	DefaultMaxExportSize  ByteSize = 1 << 30
	DefaultExportDeadline          = 30 * time.Minute
)

// ByteSize is a number of bytes, written in the file as a plain number or a
// number with a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
// (powers of 1024), like 1GiB or 800MB.
type ByteSize int64

// byteUnits are the units ByteSize reads, longest suffix first.
var byteUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// UnmarshalText reads a size like 1GiB, 800MB or 1073741824.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size like 1GiB, 800MB or 1073741824 (bytes)", s)
	}
	*b = ByteSize(n * mult)
	return nil
}

// String writes the size in the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// ExportBounds are the bounds of one tenant's export: upstream's, with the
// tenant's own where it sets them.
func (c *Config) ExportBounds(t Tenant) (deadline time.Duration, maxSize ByteSize) {
	deadline, maxSize = c.Upstream.ExportDeadline, c.Upstream.MaxExportSize
	if t.ExportDeadline != 0 {
		deadline = t.ExportDeadline
	}
	if t.MaxExportSize != 0 {
		maxSize = t.MaxExportSize
	}
	return deadline, maxSize
}

// bounds checks upstream's export bounds and every tenant's own.
func (v *validator) bounds() {
	check := func(path string, d time.Duration, size ByteSize, need bool) {
		switch {
		case d < 0, need && d == 0:
			v.add(path+".export_deadline", "%s must be a positive duration", d)
		case d > 0 && d < time.Second:
			v.add(path+".export_deadline", "%s is shorter than 1s", d)
		}
		switch {
		case size < 0, need && size == 0:
			v.add(path+".max_export_size", "%d must be a positive size", size)
		case size > 0 && size < 1024:
			v.add(path+".max_export_size", "%s is smaller than 1KiB: no PIFU document fits", size)
		}
	}
	check("upstream", v.c.Upstream.ExportDeadline, v.c.Upstream.MaxExportSize, true)
	for i, t := range v.c.Tenants {
		check(fmt.Sprintf("tenants[%d]", i), t.ExportDeadline, t.MaxExportSize, false)
	}
}
