package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// PeriodState is an application's use of one quota period, as the shared
// store holds it.
type PeriodState struct {
	Period string    `json:"period"` // "daily" or "monthly"
	Key    string    `json:"key"`    // "2026-12-08" or "2026-12", in the upstream's zone
	Start  time.Time `json:"start"`
	Reset  time.Time `json:"reset"` // the period's end
	Used   int64     `json:"used"`
	Limit  int64     `json:"limit"` // 0: no quota
	// Remaining is Limit - Used (0 when used up; 0 without a quota).
	Remaining int64 `json:"remaining"`
	// Paused: the quota is used up and requests wait for Reset.
	Paused bool `json:"paused"`
	// Exhausts is when the quota runs out at the pace of the period so far
	// (Used over the time since Start); zero without a quota, without use,
	// or when used up. ExhaustsBeforeReset says whether that is before Reset.
	Exhausts            time.Time `json:"exhausts,omitzero"`
	ExhaustsBeforeReset bool      `json:"exhausts_before_reset"`
}

// State is an application's quota state at an instant: any replica and the
// operator's command read the same from the store.
type State struct {
	Application string      `json:"application"`
	At          time.Time   `json:"at"`
	Zone        string      `json:"zone"`
	Daily       PeriodState `json:"daily"`
	Monthly     PeriodState `json:"monthly"`
	// BlockedUntil is the upstream's Retry-After shared by every replica,
	// when it lies ahead.
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
}

// State reads app's quota state at now from the store, counting nothing.
// A period that has begun since the last request shows no use.
func (l *Limiter) State(ctx context.Context, app string, lim Limits, now time.Time) (State, error) {
	if !appName.MatchString(app) {
		return State{}, fmt.Errorf("quota state of %q: %w", app, ErrBadApplication)
	}
	r, _, err := l.load(ctx, app)
	if err != nil {
		return State{}, err
	}
	if r.Day == "" && r.Month == "" {
		// Nothing counted in this layout yet: the counters of the earlier one.
		if b, err := l.legacy(ctx, app, now, lim.Zone); err != nil {
			return State{}, err
		} else if b != nil {
			_ = json.Unmarshal(b, &r)
		}
	}
	r.roll(now, lim.Zone)
	until, err := l.blockedUntil(ctx, app)
	if err != nil {
		return State{}, err
	}
	daily, monthly := Periods(now, lim.Zone)
	s := State{Application: app, At: now, Zone: zone(lim.Zone).String(),
		Daily:   periodState(daily, r.Daily, lim.Daily, r.pausedIn("daily", now, lim.Zone), now),
		Monthly: periodState(monthly, r.Monthly, lim.Monthly, r.pausedIn("monthly", now, lim.Zone), now)}
	if until.After(now) {
		s.BlockedUntil = until
	}
	return s, nil
}

func periodState(p Period, used, limit int64, paused bool, now time.Time) PeriodState {
	s := PeriodState{Period: p.Name, Key: p.Key, Start: p.Start, Reset: p.End, Used: used, Limit: limit}
	if limit <= 0 {
		return s
	}
	s.Remaining = max(limit-used, 0)
	s.Paused = paused || used >= limit
	if elapsed := now.Sub(p.Start); used > 0 && used < limit && elapsed > 0 {
		pace := float64(used) / elapsed.Seconds()              // requests per second
		secs := min(float64(limit-used)/pace, 100*365*24*3600) // at most a century: no overflow
		s.Exhausts = now.Add(time.Duration(secs * float64(time.Second))).Truncate(time.Second)
		s.ExhaustsBeforeReset = s.Exhausts.Before(p.End)
	}
	return s
}
