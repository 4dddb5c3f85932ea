package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// record is an application's quota use, the one key <app>.usage of the
// counts bucket: the day and month it counts (in the upstream's zone), the
// requests granted in each, and the day and month whose quota ran out (its
// pause announced). A record of an earlier day or month counts nothing in
// the current one: see roll.
type record struct {
	Day         string `json:"day"`
	Daily       int64  `json:"daily"`
	Month       string `json:"month"`
	Monthly     int64  `json:"monthly"`
	PausedDay   string `json:"paused_day,omitempty"`
	PausedMonth string `json:"paused_month,omitempty"`
}

func usageKey(app string) string { return app + ".usage" }

// roll moves r to the day and month now falls in, counting nothing in a
// period that has begun since r was written. The pause markers stay: a
// marker of an earlier period is a pause that has ended.
func (r *record) roll(now time.Time, loc *time.Location) {
	if d := DayKey(now, loc); r.Day != d {
		r.Day, r.Daily = d, 0
	}
	if m := MonthKey(now, loc); r.Month != m {
		r.Month, r.Monthly = m, 0
	}
}

// refusal is the period whose quota is used up ("daily" or "monthly"; the
// monthly first, as its wait is the longer), if any.
func (r *record) refusal(lim Limits) (string, bool) {
	switch {
	case lim.Monthly > 0 && r.Monthly >= lim.Monthly:
		return "monthly", true
	case lim.Daily > 0 && r.Daily >= lim.Daily:
		return "daily", true
	}
	return "", false
}

// pausedIn reports whether the pause of period in the current one is
// already recorded (and announced).
func (r *record) pausedIn(period string, now time.Time, loc *time.Location) bool {
	if period == "monthly" {
		return r.PausedMonth == MonthKey(now, loc)
	}
	return r.PausedDay == DayKey(now, loc)
}

// refuse is the Throttled error of a used-up quota: wait for the period's end.
func refuse(period string, now time.Time, loc *time.Location) error {
	if period == "monthly" {
		return throttled(failure.ReasonMonthlyQuotaUsed, NextMonth(now, loc).Sub(now))
	}
	return throttled(failure.ReasonDailyQuotaUsed, NextDay(now, loc).Sub(now))
}

// load reads app's record and its revision (0 for none).
func (l *Limiter) load(ctx context.Context, app string) (record, uint64, error) {
	var r record
	e, err := l.counts.Get(ctx, usageKey(app))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, 0, nil
	}
	if err != nil {
		return r, 0, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("read the quota use of %s: %w", app, err))
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return r, 0, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("the quota use of %s holds %q: %w", app, e.Value(), err))
	}
	return r, e.Revision(), nil
}

// legacy is the record an application's counters of the earlier layout give
// (<app>.daily.<UTC day> and <app>.monthly.<UTC month>, one key each), for
// the periods now falls in, so that an upgrade mid-day keeps the day's
// count. Counters of other periods are not carried over.
func (l *Limiter) legacy(ctx context.Context, app string, now time.Time, loc *time.Location) ([]byte, error) {
	r := record{Day: DayKey(now, loc), Month: MonthKey(now, loc)}
	read := func(key string) (int64, error) {
		e, err := l.counts.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, failure.New(failure.Transient, failure.ReasonQuotaStore, fmt.Errorf("read %s: %w", key, err))
		}
		n, err := strconv.ParseInt(string(e.Value()), 10, 64)
		if err != nil {
			return 0, nil // a damaged old counter counts nothing
		}
		return n, nil
	}
	var err error
	if r.Daily, err = read(app + ".daily." + r.Day); err != nil {
		return nil, err
	}
	if r.Monthly, err = read(app + ".monthly." + r.Month); err != nil {
		return nil, err
	}
	if r.Daily == 0 && r.Monthly == 0 {
		return nil, nil
	}
	return json.Marshal(r)
}

// count is Take's one compare-and-set: the record rolled to now's periods,
// checked against both quotas and, when both allow it, counted. A refusal
// that is the first of its period records the pause in the same write, so
// the pause is announced once. After the write, the alerts the request
// caused are raised: a threshold it reached, the pause, or the resumption
// of a period paused before.
func (l *Limiter) count(ctx context.Context, app string, lim Limits, now time.Time) (Usage, error) {
	loc := lim.Zone
	var r, before record
	var refused string
	err := casLoop(ctx, l.counts, usageKey(app),
		func() ([]byte, error) { return l.legacy(ctx, app, now, loc) },
		func(cur []byte) ([]byte, error) {
			r, refused = record{}, ""
			if len(cur) > 0 {
				if err := json.Unmarshal(cur, &r); err != nil {
					return nil, fmt.Errorf("the quota use of %s holds %q: %w", app, cur, err)
				}
			}
			before = r
			r.roll(now, loc)
			if p, ok := r.refusal(lim); ok {
				refused = p
				if r.pausedIn(p, now, loc) {
					return nil, errNoChange
				}
				if p == "monthly" {
					r.PausedMonth = r.Month
				} else {
					r.PausedDay = r.Day
				}
				return json.Marshal(r)
			}
			r.Daily++
			r.Monthly++
			// A pause of an earlier period has ended with this request.
			if r.PausedDay != "" && r.PausedDay != r.Day {
				r.PausedDay = ""
			}
			if r.PausedMonth != "" && r.PausedMonth != r.Month {
				r.PausedMonth = ""
			}
			return json.Marshal(r)
		})
	if err != nil {
		return Usage{}, err
	}
	daily, monthly := Periods(now, loc)
	if refused != "" {
		if !before.pausedIn(refused, now, loc) {
			p, used, limit := daily, r.Daily, lim.Daily
			if refused == "monthly" {
				p, used, limit = monthly, r.Monthly, lim.Monthly
			}
			l.raise(ctx, Alert{Application: app, Kind: KindPaused, Period: p.Name, PeriodKey: p.Key,
				Used: used, Limit: limit, At: now, Until: p.End})
		}
		return Usage{}, refuse(refused, now, loc)
	}
	u := Usage{Daily: r.Daily, Monthly: r.Monthly, DailyLimit: lim.Daily, MonthlyLimit: lim.Monthly}
	if before.PausedDay != "" && r.PausedDay == "" {
		l.raise(ctx, Alert{Application: app, Kind: KindResumed, Period: "daily", PeriodKey: daily.Key, Used: u.Daily, Limit: lim.Daily, At: now})
	}
	if before.PausedMonth != "" && r.PausedMonth == "" {
		l.raise(ctx, Alert{Application: app, Kind: KindResumed, Period: "monthly", PeriodKey: monthly.Key, Used: u.Monthly, Limit: lim.Monthly, At: now})
	}
	l.thresholds(ctx, app, daily, u.Daily, lim.Daily, lim.alertAt(), now)
	l.thresholds(ctx, app, monthly, u.Monthly, lim.Monthly, lim.alertAt(), now)
	return u, nil
}

// thresholds raises an alert when this request is the one that reached a
// threshold (the counts are atomic, so exactly one request has used equal
// to the mark), so each is raised once per period.
func (l *Limiter) thresholds(ctx context.Context, app string, p Period, used, limit int64, at []float64, now time.Time) {
	if limit <= 0 {
		return
	}
	for _, t := range at {
		if used == int64(math.Ceil(t*float64(limit))) {
			l.raise(ctx, Alert{Application: app, Kind: KindThreshold, Period: p.Name, PeriodKey: p.Key,
				Threshold: t, Used: used, Limit: limit, At: now})
		}
	}
}

func (l *Limiter) raise(ctx context.Context, a Alert) {
	if l.alert == nil || a.Limit <= 0 {
		return
	}
	if err := l.alert(ctx, a); err != nil {
		l.logger.Warn("quota alert not published", "application", a.Application, "kind", a.Kind, "period", a.Period,
			"threshold", a.Threshold, "err", err)
	}
}
