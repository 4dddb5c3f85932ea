// Package quota keeps the upstream's per-application limits on our side of the
// wire, shared by every fetcher replica through JetStream key-value buckets:
// a token-bucket rate limit, daily and monthly quotas with alerts as usage
// approaches them, and a "blocked until" time set when the upstream answers
// 429 or 503 with Retry-After, so that every replica honours it.
//
// All state lives in the buckets and is updated with compare-and-set on the
// key's revision, so any number of replicas together stay under the limits.
// A Limiter is safe for concurrent use.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// Daily and Monthly cap the requests per UTC day and month; 0 means none.
	Daily, Monthly int64
	// AlertAt are the shares of a quota at which an alert is raised once per
	// period (default 0.8 and 0.95).
	AlertAt []float64
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

// Alert says that an application's use of a quota crossed a threshold.
type Alert struct {
	Application string    `json:"application"`
	Period      string    `json:"period"`     // "daily" or "monthly"
	PeriodKey   string    `json:"period_key"` // "2026-12-01" or "2026-12"
	Threshold   float64   `json:"threshold"`
	Used        int64     `json:"used"`
	Limit       int64     `json:"limit"`
	At          time.Time `json:"at"`
}

// ID is the alert's deduplication id: one alert per application, period and
// threshold, however many replicas notice it.
func (a Alert) ID() string {
	return fmt.Sprintf("quota-%s-%s-%s-%g", a.Application, a.Period, a.PeriodKey, a.Threshold)
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

// New returns a Limiter over the two buckets. alert is called when usage
// crosses a threshold (it may be nil); its error is logged, not returned:
// an alert lost is no reason to refuse a fetch.
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
// rate bucket is empty, the upstream asked us to back off (Block), or a
// quota is used up (the wait runs to the start of the next period). Nothing
// is counted when Take refuses. ctx bounds the key-value round trips.
func (l *Limiter) Take(ctx context.Context, app string, lim Limits) (Usage, error) {
	if !appName.MatchString(app) {
		return Usage{}, failure.New(failure.Permanent, failure.ReasonBadApplication, fmt.Errorf("%q: %w", app, ErrBadApplication))
	}
	now := l.now().UTC()
	if until, err := l.blockedUntil(ctx, app); err != nil {
		return Usage{}, err
	} else if until.After(now) {
		return Usage{}, throttled(failure.ReasonUpstreamBackoff, until.Sub(now))
	}
	if err := l.checkQuota(ctx, app, lim, now); err != nil {
		return Usage{}, err
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
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return Usage{}, ctx.Err()
		case <-t.C:
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
	return casLoop(ctx, l.rate, key, func(cur []byte) ([]byte, error) {
		if len(cur) > 0 {
			if n, err := strconv.ParseInt(string(cur), 10, 64); err == nil && n >= until.UnixNano() {
				return nil, errNoChange
			}
		}
		return []byte(strconv.FormatInt(until.UnixNano(), 10)), nil
	})
}

// Usage reads app's current use of its quotas without counting anything.
func (l *Limiter) Usage(ctx context.Context, app string, lim Limits) (Usage, error) {
	now := l.now().UTC()
	d, err := l.read(ctx, dailyKey(app, now))
	if err != nil {
		return Usage{}, err
	}
	m, err := l.read(ctx, monthlyKey(app, now))
	if err != nil {
		return Usage{}, err
	}
	return Usage{Daily: d, Monthly: m, DailyLimit: lim.Daily, MonthlyLimit: lim.Monthly}, nil
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

func (l *Limiter) checkQuota(ctx context.Context, app string, lim Limits, now time.Time) error {
	if lim.Daily > 0 {
		used, err := l.read(ctx, dailyKey(app, now))
		if err != nil {
			return err
		}
		if used >= lim.Daily {
			next := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
			return throttled(failure.ReasonDailyQuotaUsed, next.Sub(now))
		}
	}
	if lim.Monthly > 0 {
		used, err := l.read(ctx, monthlyKey(app, now))
		if err != nil {
			return err
		}
		if used >= lim.Monthly {
			next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			return throttled(failure.ReasonMonthlyQuotaUsed, next.Sub(now))
		}
	}
	return nil
}

// bucket is the stored token bucket of one application.
type bucket struct {
	Tokens float64 `json:"tokens"`
	At     int64   `json:"at"` // unix nanoseconds of the last refill
}

func (l *Limiter) takeToken(ctx context.Context, app string, lim Limits, now time.Time) error {
	var wait time.Duration
	err := casLoop(ctx, l.rate, app+".bucket", func(cur []byte) ([]byte, error) {
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

func (l *Limiter) count(ctx context.Context, app string, lim Limits, now time.Time) (Usage, error) {
	u := Usage{DailyLimit: lim.Daily, MonthlyLimit: lim.Monthly}
	var err error
	if u.Daily, err = l.incr(ctx, dailyKey(app, now)); err != nil {
		return u, err
	}
	if u.Monthly, err = l.incr(ctx, monthlyKey(app, now)); err != nil {
		return u, err
	}
	l.maybeAlert(ctx, app, "daily", now.Format("2006-01-02"), u.Daily, lim.Daily, lim.alertAt(), now)
	l.maybeAlert(ctx, app, "monthly", now.Format("2006-01"), u.Monthly, lim.Monthly, lim.alertAt(), now)
	return u, nil
}

// maybeAlert raises an alert when this request is the one that crossed a
// threshold (used-1 below, used at or above), so each is raised once.
func (l *Limiter) maybeAlert(ctx context.Context, app, period, key string, used, limit int64, at []float64, now time.Time) {
	if limit <= 0 || l.alert == nil {
		return
	}
	for _, t := range at {
		mark := int64(math.Ceil(t * float64(limit)))
		if used == mark {
			a := Alert{Application: app, Period: period, PeriodKey: key, Threshold: t, Used: used, Limit: limit, At: now}
			if err := l.alert(ctx, a); err != nil {
				l.logger.Warn("quota alert not published", "application", app, "period", period, "threshold", t, "err", err)
			}
		}
	}
}

func (l *Limiter) read(ctx context.Context, key string) (int64, error) {
	e, err := l.counts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("read %s: %w", key, err))
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return 0, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("counter %s holds %q: %w", key, e.Value(), err))
	}
	return n, nil
}

func (l *Limiter) incr(ctx context.Context, key string) (int64, error) {
	var n int64
	err := casLoop(ctx, l.counts, key, func(cur []byte) ([]byte, error) {
		n = 0
		if len(cur) > 0 {
			v, err := strconv.ParseInt(string(cur), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("counter %s holds %q: %w", key, cur, err)
			}
			n = v
		}
		n++
		return []byte(strconv.FormatInt(n, 10)), nil
	})
	return n, err
}

func dailyKey(app string, t time.Time) string   { return app + ".daily." + t.Format("2006-01-02") }
func monthlyKey(app string, t time.Time) string { return app + ".monthly." + t.Format("2006-01") }

func throttled(reason failure.Reason, wait time.Duration) error {
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return &failure.Error{Class: failure.Throttled, Reason: reason, RetryAfter: wait}
}

// errNoChange tells casLoop that update decided to write nothing.
var errNoChange = errors.New("no change")

// casLoop applies update to key's current value with compare-and-set,
// retrying on a conflicting write by another replica.
func casLoop(ctx context.Context, kv jetstream.KeyValue, key string, update func(cur []byte) ([]byte, error)) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var cur []byte
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
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
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			if attempt > 1000 {
				return failure.New(failure.Transient, failure.ReasonQuotaContention, fmt.Errorf("update %s: too many conflicting writers", key))
			}
			continue
		}
		return failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("write %s: %w", key, err))
	}
}
