package fetcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// A burst of 5xx is retried with backoff and then succeeds; nothing reaches
// the dead-letter stream.
func TestServerErrorsRetriedThenSucceed(t *testing.T) {
	e := newEnv(t, smallSandbox())
	e.setFaults(t, fjordvik, sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{500, 502}})
	e.run(t, e.config(nil), 1)
	e.request(t, fjordvik, demoApp, "burst")
	waitFor(t, 10*time.Second, "two failed answers", func() bool {
		return e.stats(t).Applications[sandbox.DemoClientID].Faulted >= 2
	})
	e.setFaults(t, fjordvik, sandbox.Faults{})
	waitFor(t, 10*time.Second, "the fetched export", func() bool { return len(e.fetchedExports(t)) == 1 })
	if dls := e.deadLetters(t); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
	st := e.stats(t).Applications[sandbox.DemoClientID]
	if st.Faulted < 2 || st.Served != 1 || st.Faulted >= 5 {
		t.Errorf("sandbox: faulted %d served %d; want 2..4 failures, then one export", st.Faulted, st.Served)
	}
}

// A body cut midway is transient: the partial object is gone, and the retry
// stores the whole export.
func TestCutBodyRetried(t *testing.T) {
	e := newEnv(t, smallSandbox())
	want := e.direct(t, maaneby)
	e.setFaults(t, maaneby, sandbox.Faults{CutOffAfter: int64(len(want) / 2)})
	e.run(t, e.config(nil), 1)
	job := e.request(t, maaneby, demoApp, "cut")
	// While the fault holds, no object of the job is stored: not after the
	// first cut attempt, which is over once its retry is cut too.
	waitFor(t, 10*time.Second, "two cut answers", func() bool { return e.stats(t).Applications[sandbox.DemoClientID].Faulted >= 2 })
	if _, err := e.bus.Stores.Exports.GetInfo(context.Background(), ObjectName(job.Job)); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("partial export stored: %v", err)
	}
	e.setFaults(t, maaneby, sandbox.Faults{})
	waitFor(t, 10*time.Second, "the fetched export", func() bool { return len(e.fetchedExports(t)) == 1 })
	if fe := e.fetchedExports(t)[0]; fe.Size != int64(len(want)) {
		t.Errorf("stored %d bytes, want %d", fe.Size, len(want))
	}
	if dls := e.deadLetters(t); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
}

// A 429 from the upstream delays the job (and blocks every replica for the
// Retry-After); it is not an attempt and not a failure.
func TestUpstream429Delays(t *testing.T) {
	sc := smallSandbox()
	sc.Applications[0].RateLimit = &sandbox.RateLimit{Rate: 1, Burst: 1}
	e := newEnv(t, sc)
	// The fetcher does not know the upstream's limit: it will meet a 429.
	cfg := e.config(map[string]quota.Limits{demoApp: {}})
	cfg.MaxAttempts = 1 // a counted attempt would dead-letter the job
	e.run(t, cfg, 1)
	for _, id := range []string{"a", "b", "c"} {
		e.request(t, fjordvik, demoApp, id)
	}
	waitFor(t, 15*time.Second, "three fetched exports", func() bool { return len(e.fetchedExports(t)) == 3 })
	if dls := e.deadLetters(t); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
	st := e.stats(t).Applications[sandbox.DemoClientID]
	if st.Throttled == 0 {
		t.Fatalf("the sandbox sent no 429 (stats %+v): the test did not test anything", st)
	}
	// The Retry-After was shared through the rate-limit bucket.
	if _, err := e.bus.Stores.RateLimit.Get(context.Background(), demoApp+".blocked"); err != nil {
		t.Errorf("no block recorded for the other replicas: %v", err)
	}
	rm, _ := e.tel.Collect(context.Background())
	if n := sumInt(rm, MetricJobs, "outcome", "throttled"); n == 0 {
		t.Error("no throttled outcome recorded")
	}
}

// While a tenant's breaker is open, its jobs are delayed by the remaining
// open time: no request reaches the upstream and no job is dead-lettered,
// although the attempts allowed would have run out long before.
func TestOpenBreakerDelaysJobs(t *testing.T) {
	e := newEnv(t, smallSandbox())
	e.setFaults(t, fjordvik, sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{500}})
	cfg := e.config(nil)
	cfg.MaxAttempts = 4
	cfg.Backoff = []time.Duration{50 * time.Millisecond}
	cfg.Breaker = BreakerConfig{Failures: 2, OpenFor: 1500 * time.Millisecond}
	e.run(t, cfg, 1)
	e.request(t, fjordvik, demoApp, "breaker")
	waitFor(t, 10*time.Second, "two failures", func() bool { return e.stats(t).Applications[sandbox.DemoClientID].Faulted >= 2 })
	time.Sleep(700 * time.Millisecond) // well inside the open time, many backoffs long
	st := e.stats(t).Applications[sandbox.DemoClientID]
	if st.Requests != 2 {
		t.Errorf("%d requests reached the upstream with the breaker open, want 2", st.Requests)
	}
	rm, _ := e.tel.Collect(context.Background())
	if n := sumInt(rm, MetricBreakerOpen, "skolebuss.tenant", fjordvik); n != 2 {
		t.Errorf("breaker gauge %d, want 2 (open)", n)
	}
	if dls := e.deadLetters(t); len(dls) != 0 {
		t.Fatalf("dead-lettered while the breaker was open: %+v", dls)
	}
	e.setFaults(t, fjordvik, sandbox.Faults{})
	waitFor(t, 10*time.Second, "the fetched export after the breaker half-opens", func() bool { return len(e.fetchedExports(t)) == 1 })
	if dls := e.deadLetters(t); len(dls) != 0 {
		t.Errorf("dead letters: %+v", dls)
	}
	if st := e.stats(t).Applications[sandbox.DemoClientID]; st.Requests != 3 {
		t.Errorf("%d requests, want 2 failures and 1 probe", st.Requests)
	}
}

// Three fetchers sharing the application's rate limit through the bus never
// get a 429 from an upstream whose limit is that rate.
func TestThreeFetchersStayUnderRateLimit(t *testing.T) {
	sc := smallSandbox()
	sc.Applications[0].RateLimit = &sandbox.RateLimit{Rate: 4, Burst: 1}
	e := newEnv(t, sc)
	// Our limit admits a request when it leaves; the upstream counts it when
	// it arrives. Three quarters of the upstream's rate leaves 80 ms for
	// the two to drift apart (a token fetch, a slow machine, -race).
	cfg := e.config(map[string]quota.Limits{demoApp: {Rate: 3, Burst: 1, Daily: 1000}})
	cfg.Concurrency = 2
	e.run(t, cfg, 3)
	const jobs = 12
	tenants := []string{fjordvik, maaneby, nordstrand}
	for i := range jobs {
		e.request(t, tenants[i%3], demoApp, "rl-"+string(rune('a'+i)))
	}
	waitFor(t, 20*time.Second, "every fetched export", func() bool { return len(e.fetchedExports(t)) == jobs })
	st := e.stats(t).Applications[sandbox.DemoClientID]
	if st.Throttled != 0 || st.Requests != jobs {
		t.Errorf("sandbox: %d requests, %d answered 429; want %d and 0", st.Requests, st.Throttled, jobs)
	}
	rm, _ := e.tel.Collect(context.Background())
	// Three replicas share one meter provider here: each reports its last
	// view of the application's daily use; the highest is the total.
	if !hasMetric(rm, MetricQuotaShare) {
		t.Error("no quota approach metric")
	}
	if n := len(e.deadLetters(t)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}
