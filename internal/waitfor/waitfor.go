// Package waitfor lets a test wait for a condition by polling it, instead
// of sleeping a fixed time and hoping the condition holds by then.
package waitfor

import (
	"testing"
	"time"
)

// Interval is the pause between two checks of a condition.
const Interval = 20 * time.Millisecond

// Condition calls cond until it returns nil, pausing Interval between
// calls, and returns once it does. If within passes first, it fails the
// test with cond's last error, which should say what was last seen. cond
// runs on the test's goroutine and may itself fail the test.
func Condition(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not so after %s: %v", within, err)
		}
		time.Sleep(Interval)
	}
}
