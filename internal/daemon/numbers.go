package daemon

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// The default bounds of the numeric flags (see CheckNumbers).
const (
	MaxFlagDuration = 30 * 24 * time.Hour
	MaxFlagCount    = 1 << 20
)

// Range is the values one numeric flag may take where they differ from
// CheckNumbers' default: Min and Max are inclusive, in nanoseconds for a
// duration flag (int64(time.Second)).
type Range struct {
	Flag     string
	Min, Max int64
}

// CheckNumbers checks every duration and integer flag of fs (set or left at
// its default) against its range: unless ranges names the flag, a duration
// from 1ns to MaxFlagDuration and a count from 1 to MaxFlagCount. The
// error wraps ErrUsage and names the flag and the values it takes. Every
// command calls it (through ParseFlags) right after parsing, before it
// reads a file or connects to anything.
func CheckNumbers(fs *flag.FlagSet, ranges ...Range) error {
	byName := make(map[string]Range, len(ranges))
	for _, r := range ranges {
		if fs.Lookup(r.Flag) == nil {
			return fmt.Errorf("range of %q: no such flag", r.Flag)
		}
		byName[r.Flag] = r
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		r, custom := byName[f.Name]
		switch v := g.Get().(type) {
		case time.Duration:
			if !custom {
				r = Range{Min: 1, Max: int64(MaxFlagDuration)}
			}
			if int64(v) < r.Min || int64(v) > r.Max {
				errs = append(errs, fmt.Errorf("--%s %s: want a duration from %s to %s", f.Name, v, time.Duration(r.Min), time.Duration(r.Max)))
			}
		case int, int64, uint, uint64:
			if !custom {
				r = Range{Min: 1, Max: MaxFlagCount}
			}
			n, inRange := asInt64(v)
			if !inRange || n < r.Min || n > r.Max {
				errs = append(errs, fmt.Errorf("--%s %v: want a number from %d to %d", f.Name, v, r.Min, r.Max))
			}
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrUsage, errors.Join(errs...))
	}
	return nil
}

// asInt64 is v as an int64, and whether it fits.
func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), uint64(n) <= 1<<63-1
	case uint64:
		return int64(n), n <= 1<<63-1
	}
	return 0, false
}
