// Package quota keeps the upstream's per-application limits on our side of the
// wire, shared by every fetcher replica through JetStream key-value buckets:
// a token-bucket rate limit, daily and monthly quotas counted in the
// upstream's own days and months (Limits.Zone) with alerts as usage
// approaches them, runs out and resumes, and a "blocked until" time set when
// the upstream answers 429 or 503 with Retry-After, so that every replica
// honours it.
//
// All state lives in the buckets and is updated with compare-and-set on the
// key's revision, with a jittered back-off when replicas collide. An
// application's daily and monthly counts are one key, so the check against
// both quotas and the count of a request are one compare-and-set: however
// many replicas and requests race at a quota's edge, exactly the quota is
// granted. A Limiter is safe for concurrent use; State reads what every
// replica and the operator's command see alike.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// Limits are one application's limits as agreed with the upstream.
type Limits struct {
	// Rate is the sustained number of requests per second; 0 means no rate limit.
	Rate float64
	// Burst is the bucket's size; at least 1 when Rate is set.
	Burst int
	// Daily and Monthly cap the requests per day and month in Zone; 0 means none.
	Daily, Monthly int64
	// AlertAt are the shares of a quota at which an alert is raised once per
	// period (default 0.8 and 0.95).
	AlertAt []float64
	// Zone is the zone the upstream counts its days and months in; nil is UTC.
	Zone *time.Location
}

// Validate reports the first thing wrong with l.
func (l Limits) Validate() error {
	switch {
	case l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0):
		return fmt.Errorf("rate: %v is not a rate per second", l.Rate)
	case l.Rate > 0 && l.Burst < 1:
		return fmt.Errorf("burst: %d must be at least 1 when a rate is set", l.Burst)
	case l.Daily < 0, l.Monthly < 0:
		return errors.New("quota: daily and monthly must not be negative")
	}
	for _, a := range l.AlertAt {
		if a <= 0 || a > 1 {
			return fmt.Errorf("alert_at: %v is not a share in (0, 1]", a)
		}
	}
	return nil
}

func (l Limits) alertAt() []float64 {
	if len(l.AlertAt) == 0 {
		return []float64{0.8, 0.95}
	}
	return l.AlertAt
}

// The kinds of Alert.
const (
	KindThreshold = "threshold" // usage crossed one of AlertAt
	KindPaused    = "paused"    // the quota is used up: requests wait for the period's end
	KindResumed   = "resumed"   // the first request granted after a pause of the period
)

// Alert is an event about an application's use of a quota: a threshold
// crossed, requests paused because the quota is used up, or resumed after
// the pause. Each is raised once per application, period and kind (and
// threshold).
type Alert struct {
	Application string    `json:"application"`
	Kind        string    `json:"kind"`       // KindThreshold, KindPaused or KindResumed
	Period      string    `json:"period"`     // "daily" or "monthly"
	PeriodKey   string    `json:"period_key"` // "2026-12-01" or "2026-12", in the upstream's zone
	Threshold   float64   `json:"threshold,omitempty"`
	Used        int64     `json:"used"`
	Limit       int64     `json:"limit"`
	At          time.Time `json:"at"`
	// Until is when a pause ends: the period's reset.
	Until time.Time `json:"until,omitzero"`
}

// ID is the alert's deduplication id: one alert per application, period,
// kind and threshold, however many replicas notice it.
func (a Alert) ID() string {
	if a.Kind == KindThreshold || a.Kind == "" {
		return fmt.Sprintf("quota-%s-%s-%s-%g", a.Application, a.Period, a.PeriodKey, a.Threshold)
	}
	return fmt.Sprintf("quota-%s-%s-%s-%s", a.Application, a.Period, a.PeriodKey, a.Kind)
}

// Usage is an application's use of its quotas after a request was counted.
type Usage struct {
	Daily, Monthly           int64
	DailyLimit, MonthlyLimit int64
}

// Limiter enforces Limits through two key-value buckets: rate holds the token
// buckets and the blocked-until times, counts holds the quota counters.
type Limiter struct {
	rate, counts jetstream.KeyValue
	alert        func(context.Context, Alert) error
	logger       *slog.Logger
	now          func() time.Time
}

// New returns a Limiter over the two buckets. alert is called for each
// Alert (it may be nil); its error is logged, not returned: an alert lost is
// no reason to refuse a fetch.
func New(rate, counts jetstream.KeyValue, alert func(context.Context, Alert) error, logger *slog.Logger) *Limiter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Limiter{rate: rate, counts: counts, alert: alert, logger: logger, now: time.Now}
}

var appName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ErrBadApplication is returned for an application name that cannot be a key.
var ErrBadApplication = errors.New("application name must be 1-64 letters, digits, '-' or '_'")

// Take counts one upstream request for app. When the request may not be made
// now it returns a failure.Throttled error carrying how long to wait: the
// upstream asked us to back off (Block), a quota is used up (the wait runs
// to the start of the next period in lim.Zone), or the rate bucket is empty.
// The check against both quotas and the count are one compare-and-set, so
// the quotas are never exceeded; nothing is counted when Take refuses. ctx
// bounds the key-value round trips.
func (l *Limiter) Take(ctx context.Context, app string, lim Limits) (Usage, error) {
	if !appName.MatchString(app) {
		return Usage{}, failure.New(failure.Permanent, failure.ReasonBadApplication, fmt.Errorf("%q: %w", app, ErrBadApplication))
	}
	now := l.now()
	if until, err := l.blockedUntil(ctx, app); err != nil {
		return Usage{}, err
	} else if until.After(now) {
		return Usage{}, throttled(failure.ReasonUpstreamBackoff, until.Sub(now))
	}
	// A quota already used up refuses before a token of the rate is spent:
	// with this one read once its pause is recorded, else through count,
	// whose write records the pause.
	if lim.Daily > 0 || lim.Monthly > 0 {
		rec, _, err := l.load(ctx, app)
		if err != nil {
			return Usage{}, err
		}
		rec.roll(now, lim.Zone)
		if p, ok := rec.refusal(lim); ok {
			if rec.pausedIn(p, now, lim.Zone) {
				return Usage{}, refuse(p, now, lim.Zone)
			}
			return l.count(ctx, app, lim, now)
		}
	}
	if lim.Rate > 0 {
		if err := l.takeToken(ctx, app, lim, now); err != nil {
			return Usage{}, err
		}
	}
	return l.count(ctx, app, lim, now)
}

// Wait calls Take until it succeeds, sleeping for the waits it returns, as
// long as each wait is at most maxWait; a longer wait (a quota used up, a long
// Retry-After) is returned as the Throttled error so the caller can hand the
// job back instead of holding it. ctx cancellation ends the wait.
func (l *Limiter) Wait(ctx context.Context, app string, lim Limits, maxWait time.Duration) (Usage, error) {
	for {
		u, err := l.Take(ctx, app, lim)
		if err == nil {
			return u, nil
		}
		d, ok := failure.RetryAfter(err)
		if !ok || d > maxWait {
			return u, err
		}
		if err := sleep(ctx, d); err != nil {
			return Usage{}, err
		}
	}
}

// Block makes every replica wait until until before its next request for app,
// as the upstream asked with Retry-After. A later block never shortens an
// earlier one.
func (l *Limiter) Block(ctx context.Context, app string, until time.Time) error {
	if !appName.MatchString(app) {
		return fmt.Errorf("block %q: %w", app, ErrBadApplication)
	}
	key := app + ".blocked"
	return casLoop(ctx, l.rate, key, nil, func(cur []byte) ([]byte, error) {
		if len(cur) > 0 {
			if n, err := strconv.ParseInt(string(cur), 10, 64); err == nil && n >= until.UnixNano() {
				return nil, errNoChange
			}
		}
		return []byte(strconv.FormatInt(until.UnixNano(), 10)), nil
	})
}

func (l *Limiter) blockedUntil(ctx context.Context, app string) (time.Time, error) {
	e, err := l.rate.Get(ctx, app+".blocked")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("read backoff of %s: %w", app, err))
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return time.Time{}, nil // a damaged entry must not block forever
	}
	return time.Unix(0, n), nil
}

// bucket is the stored token bucket of one application.
type bucket struct {
	Tokens float64 `json:"tokens"`
	At     int64   `json:"at"` // unix nanoseconds of the last refill
}

func (l *Limiter) takeToken(ctx context.Context, app string, lim Limits, now time.Time) error {
	var wait time.Duration
	err := casLoop(ctx, l.rate, app+".bucket", nil, func(cur []byte) ([]byte, error) {
		b := bucket{Tokens: float64(lim.Burst), At: now.UnixNano()}
		if len(cur) > 0 && json.Unmarshal(cur, &b) == nil {
			elapsed := now.Sub(time.Unix(0, b.At)).Seconds()
			if elapsed > 0 {
				b.Tokens = math.Min(float64(lim.Burst), b.Tokens+elapsed*lim.Rate)
			}
			b.At = now.UnixNano()
		}
		if b.Tokens < 1 {
			wait = time.Duration((1 - b.Tokens) / lim.Rate * float64(time.Second))
			return nil, errNoChange
		}
		b.Tokens--
		return json.Marshal(b)
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return throttled(failure.ReasonRateLimit, wait)
	}
	return nil
}

func throttled(reason failure.Reason, wait time.Duration) error {
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return &failure.Error{Class: failure.Throttled, Reason: reason, RetryAfter: wait}
}

// errNoChange tells casLoop that update decided to write nothing.
var errNoChange = errors.New("no change")

// Compare-and-set back-off: a writer that lost a race sleeps a random time
// up to casBackoff doubled per lost race (at most casBackoffMax) before it
// reads again, so colliding replicas spread out instead of spinning; after
// casAttempts lost races the update fails as contention (Transient).
const (
	casBackoff    = time.Millisecond
	casBackoffMax = 64 * time.Millisecond
	casAttempts   = 64
)

// casLoop applies update to key's current value with compare-and-set,
// retrying after a jittered back-off when another writer got there first.
// seed, when not nil, gives the value of a key that does not exist yet.
func casLoop(ctx context.Context, kv jetstream.KeyValue, key string, seed func() ([]byte, error), update func(cur []byte) ([]byte, error)) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var cur []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if seed != nil {
				if cur, err = seed(); err != nil {
					return err
				}
			}
		case err != nil:
			return failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("read %s: %w", key, err))
		default:
			cur, rev = e.Value(), e.Revision()
		}
		next, err := update(cur)
		if errors.Is(err, errNoChange) {
			return nil
		}
		if err != nil {
			return failure.New(failure.Transient, failure.ReasonQuotaStore, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, next)
		} else {
			_, err = kv.Update(ctx, key, next, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("write %s: %w", key, err))
		}
		if attempt+1 >= casAttempts {
			return failure.New(failure.Transient, failure.ReasonQuotaContention, fmt.Errorf("update %s: %d writes lost to other writers", key, casAttempts))
		}
		if err := sleep(ctx, rand.N(min(casBackoffMax, casBackoff<<min(attempt, 6)))+1); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
