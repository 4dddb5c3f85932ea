package failure

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a Retry-After so that a hostile or broken upstream
// cannot park a job for longer than a week.
const maxRetryAfter = 7 * 24 * time.Hour

// ParseRetryAfter reads an HTTP Retry-After value in either of its forms:
// delay-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"),
// the latter relative to now. An HTTP date has whole-second resolution while
// the upstream's own deadline may fall anywhere within the second it names
// (07:28:00.700 is written 07:28:00), so a date is honoured to the end of
// that second: the wait runs to 07:28:01, and no retry arrives before the
// upstream's deadline. A date whose second has passed is a wait of 0. The
// wait is capped at a week, and so is a number of seconds too large to read.
// ok is false for an empty, signed or otherwise unreadable value.
func ParseRetryAfter(v string, now time.Time) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		// delay-seconds, digits only: a number too large for an integer
		// is a long wait like any above the cap, not an unreadable one.
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Add(time.Second).Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}
