package failure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestClassOfFollowsTheChain(t *testing.T) {
	perm := Permanentf("invalid_scope", "no scope")
	wrapped := fmt.Errorf("fetch export t1: %w", perm)
	cases := []struct {
		err    error
		class  Class
		reason string
	}{
		{wrapped, Permanent, "invalid_scope"},
		{Transientf("http_502", "bad gateway"), Transient, "http_502"},
		{&Error{Class: Throttled, Reason: "http_429", RetryAfter: time.Second}, Throttled, "http_429"},
		{fmt.Errorf("x: %w", context.Canceled), Canceled, "canceled"},
		{context.DeadlineExceeded, Transient, "timeout"},
		{errors.New("something odd"), Transient, "unclassified"},
	}
	for _, c := range cases {
		if got := ClassOf(c.err); got != c.class {
			t.Errorf("ClassOf(%v) = %v, want %v", c.err, got, c.class)
		}
		if got := ReasonOf(c.err); got != c.reason {
			t.Errorf("ReasonOf(%v) = %q, want %q", c.err, got, c.reason)
		}
	}
	if d, ok := RetryAfter(fmt.Errorf("w: %w", &Error{Class: Throttled, RetryAfter: 3 * time.Second})); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter through a wrap = %v %v", d, ok)
	}
	if !errors.Is(wrapped, perm) || !IsPermanent(wrapped) {
		t.Error("a wrapped permanent error lost its identity")
	}
}

// An upstream whose deadline falls mid-second writes the second it falls in;
// a retry after the parsed wait never arrives before that deadline, however
// the client's clock stands within the seconds around it.
func TestRetryAfterDateNeverEarly(t *testing.T) {
	deadline := time.Date(2026, 12, 1, 12, 0, 30, 700_000_000, time.UTC) // the upstream's: 12:00:30.7
	header := deadline.Format(http.TimeFormat)                           // "... 12:00:30 GMT"
	if header != "Tue, 01 Dec 2026 12:00:30 GMT" {
		t.Fatalf("header %q", header)
	}
	for _, now := range []time.Time{
		time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 12, 0, 29, 999_000_000, time.UTC),
		time.Date(2026, 12, 1, 12, 0, 30, 100_000_000, time.UTC), // within the named second, before the deadline
		time.Date(2026, 12, 1, 12, 0, 30, 650_000_000, time.UTC),
	} {
		wait, ok := ParseRetryAfter(header, now)
		if !ok {
			t.Fatalf("%q unreadable", header)
		}
		if retry := now.Add(wait); retry.Before(deadline) {
			t.Errorf("at %s: wait %v retries at %s, before the upstream's deadline %s", now.Format(time.StampMilli),
				wait, retry.Format(time.StampMilli), deadline.Format(time.StampMilli))
		}
		if end := deadline.Truncate(time.Second).Add(time.Second); !now.Add(wait).Equal(end) {
			t.Errorf("at %s: retry at %s, want the end of the named second %s", now.Format(time.StampMilli),
				now.Add(wait).Format(time.StampMilli), end.Format(time.StampMilli))
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Tue, 01 Dec 2026 12:00:30 GMT", 31 * time.Second, true}, // to the end of the second named
		{"Tue, 01 Dec 2026 12:00:00 GMT", time.Second, true},      // the current second: to its end
		{"Tue, 01 Dec 2026 11:59:59 GMT", 0, true},                // a second that has passed
		{"Tue, 01 Dec 2026 11:00:00 GMT", 0, true},                // in the past
		{"99999999999", 7 * 24 * time.Hour, true},                 // capped
		{"-5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		got, ok := ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
