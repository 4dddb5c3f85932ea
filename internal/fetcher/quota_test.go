package fetcher

import (
	"context"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// The quota gauges come from the shared store: a second fetcher that has
// handled no job reports the same use as the one that fetched, and the
// fetch span carries the use and what remains at its request.
func TestQuotaGaugesReadTheSharedStore(t *testing.T) {
	e := newEnv(t, smallSandbox())
	cfg := e.config(map[string]quota.Limits{demoApp: {Daily: 1000, Monthly: 20000}})
	e.run(t, cfg, 1)
	e.request(t, fjordvik, demoApp, "one")
	e.request(t, maaneby, demoApp, "two")
	waitFor(t, 15*time.Second, "two exports", func() bool { return len(e.fetchedExports(t)) == 2 })

	other, err := telemetry.New(context.Background(), telemetry.Config{ServiceName: "other"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Shutdown(context.Background()) })
	d := e.deps()
	d.Meter = other.MeterProvider()
	if _, err := New(cfg, d); err != nil {
		t.Fatal(err)
	}
	rm, err := other.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u, r := sumInt(rm, MetricQuotaUsed, "period", "daily"), sumInt(rm, MetricQuotaRemaining, "period", "daily"); u != 2 || r != 998 {
		t.Errorf("a fetcher that fetched nothing reports %d used and %d remaining of the day, want 2 and 998", u, r)
	}
	if l := sumInt(rm, MetricQuotaLimit, "period", "monthly"); l != 20000 {
		t.Errorf("monthly limit %d", l)
	}

	var used []int64
	for _, s := range e.spans.Ended() {
		if s.Name() != SpanName {
			continue
		}
		var u, r int64 = -1, -1
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "skolebuss.quota.daily.used":
				u = kv.Value.AsInt64()
			case "skolebuss.quota.daily.remaining":
				r = kv.Value.AsInt64()
			}
		}
		if u < 1 || u+r != 1000 {
			t.Errorf("fetch span: quota used %d, remaining %d", u, r)
		}
		used = append(used, u)
	}
	if len(used) != 2 || used[0] == used[1] {
		t.Errorf("fetch spans' daily use %v, want 1 and 2", used)
	}
}
