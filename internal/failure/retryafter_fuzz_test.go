package failure

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: any header value gives a wait from 0 to a week or
// no wait; a number of seconds means exactly that wait (capped), and a
// date means the time until the end of the second it names (0 if past,
// capped), both forms reading back the wait they were written from (a date
// one second more).
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	for _, v := range []string{"120", "0", " 5 ", "-1", "Wed, 21 Oct 2026 07:28:00 GMT", "Monday, 07-Dec-26 23:00:30 GMT",
		"Mon Dec  7 23:01:00 2026", "99999999999999999999", "1.5", "+5", "", "Thu, 01 Jan 1970 00:00:00 GMT"} {
		f.Add(v, now.Unix())
	}
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		now := time.Unix(nowUnix, 0).UTC()
		wait, ok := ParseRetryAfter(v, now)
		if !ok {
			if wait != 0 {
				t.Fatalf("%q: no wait but %v", v, wait)
			}
		} else if wait < 0 || wait > maxRetryAfter {
			t.Fatalf("%q: wait %v outside [0, %v]", v, wait, maxRetryAfter)
		}
		s := strings.TrimSpace(v)
		if s != "" && strings.Trim(s, "0123456789") == "" {
			// delay-seconds: exactly that wait, capped.
			n, err := strconv.ParseUint(s, 10, 64)
			want := maxRetryAfter
			if err == nil && n < uint64(maxRetryAfter/time.Second) {
				want = time.Duration(n) * time.Second
			}
			if !ok || wait != want {
				t.Fatalf("%q: %v, %v; want %v", v, wait, ok, want)
			}
		}
		if !ok {
			return
		}
		// The wait written back in either form reads as the same wait.
		secs := strconv.FormatInt(int64(wait/time.Second), 10)
		if back, ok := ParseRetryAfter(secs, now); !ok || back != wait.Truncate(time.Second) {
			t.Fatalf("%q: wait %v written as %q reads %v, %v", v, wait, secs, back, ok)
		}
		if y := now.Year(); y > 1 && y < 9000 {
			date := now.Add(wait.Truncate(time.Second)).Format(http.TimeFormat)
			if back, ok := ParseRetryAfter(date, now); !ok || back != min(wait.Truncate(time.Second)+time.Second, maxRetryAfter) {
				t.Fatalf("%q: wait %v written as %q reads %v, %v", v, wait, date, back, ok)
			}
		}
	})
}
