package waitfor

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestConditionReturnsOnceItHolds(t *testing.T) {
	calls := 0
	Condition(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("%d calls", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

// recorder is a testing.TB that records a failure instead of ending the
// test that uses it.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func TestConditionFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	n := 0
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		Condition(r, 100*time.Millisecond, func() error { n++; return fmt.Errorf("seen %d", n) })
	}()
	if r.failed == "" {
		t.Fatal("a condition that never held did not fail the test")
	}
	if !strings.Contains(r.failed, "100ms") || !strings.HasSuffix(r.failed, fmt.Sprintf("seen %d", n)) {
		t.Errorf("failure %q does not say how long it waited and what it last saw", r.failed)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %s, want about 100ms", d)
	}
}
