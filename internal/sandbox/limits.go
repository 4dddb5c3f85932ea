package sandbox

import (
	"math"
	"sync"
	"time"
)

// limiter enforces one application's rate limit and quotas and counts what
// it served. Safe for concurrent use.
type limiter struct {
	rate  *RateLimit // nil: no rate limit
	quota Quota
	loc   *time.Location

	mu      sync.Mutex
	tokens  float64
	last    time.Time
	day     string // the day the daily count belongs to, "2006-01-02"
	month   string // "2006-01"
	daily   int
	monthly int
	stats   AppStats
}

// AppStats is what the admin endpoint reports per application.
type AppStats struct {
	// Requests are export requests with a valid token of this application.
	Requests int64 `json:"requests"`
	// Served are export answers that started with 200.
	Served int64 `json:"served"`
	// Throttled are 429 answers: RateLimited + QuotaExceeded.
	Throttled     int64 `json:"throttled"`
	RateLimited   int64 `json:"rate_limited"`
	QuotaExceeded int64 `json:"quota_exceeded"`
	// Faulted are answers spoiled by an injected fault (5xx, cut off,
	// malformed, wrong content type).
	Faulted int64 `json:"faulted"`
	// TokensIssued by the token endpoint.
	TokensIssued int64 `json:"tokens_issued"`
	// Quota use in the current day and month, and the limits (0: none).
	DailyUsed    int        `json:"daily_used"`
	DailyLimit   int        `json:"daily_limit"`
	MonthlyUsed  int        `json:"monthly_used"`
	MonthlyLimit int        `json:"monthly_limit"`
	RateLimit    *RateLimit `json:"rate_limit,omitempty"`
}

func newLimiter(rl *RateLimit, q Quota, loc *time.Location) *limiter {
	l := &limiter{rate: rl, quota: q, loc: loc}
	if rl != nil {
		l.tokens = float64(rl.Burst)
	}
	return l
}

// admit decides on one export request at now. It returns 0 when the request
// may go on (and counts it against the quotas), or the wait a 429 answer
// announces in Retry-After, and why ("rate_limit", "daily_quota",
// "monthly_quota"). A refused request uses neither a token nor quota.
func (l *limiter) admit(now time.Time) (wait time.Duration, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Requests++
	l.roll(now)
	local := now.In(l.loc)
	if l.quota.Monthly > 0 && l.monthly >= l.quota.Monthly {
		l.stats.Throttled++
		l.stats.QuotaExceeded++
		next := time.Date(local.Year(), local.Month()+1, 1, 0, 0, 0, 0, l.loc)
		return next.Sub(now), "monthly_quota"
	}
	if l.quota.Daily > 0 && l.daily >= l.quota.Daily {
		l.stats.Throttled++
		l.stats.QuotaExceeded++
		next := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, l.loc)
		return next.Sub(now), "daily_quota"
	}
	if l.rate != nil {
		if !l.last.IsZero() && now.After(l.last) {
			l.tokens = math.Min(float64(l.rate.Burst), l.tokens+now.Sub(l.last).Seconds()*l.rate.Rate)
		}
		if l.last.IsZero() || now.After(l.last) {
			l.last = now
		}
		if l.tokens < 1 {
			l.stats.Throttled++
			l.stats.RateLimited++
			return time.Duration((1 - l.tokens) / l.rate.Rate * float64(time.Second)), "rate_limit"
		}
		l.tokens--
	}
	l.daily++
	l.monthly++
	return 0, ""
}

// roll resets the counters when the day or month changed.
func (l *limiter) roll(now time.Time) {
	local := now.In(l.loc)
	day, month := local.Format("2006-01-02"), local.Format("2006-01")
	if day != l.day {
		l.day, l.daily = day, 0
	}
	if month != l.month {
		l.month, l.monthly = month, 0
	}
}

func (l *limiter) count(f func(*AppStats)) {
	l.mu.Lock()
	f(&l.stats)
	l.mu.Unlock()
}

func (l *limiter) snapshot(now time.Time) AppStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	s := l.stats
	s.DailyUsed, s.DailyLimit = l.daily, l.quota.Daily
	s.MonthlyUsed, s.MonthlyLimit = l.monthly, l.quota.Monthly
	s.RateLimit = l.rate
	return s
}

// retryAfterSeconds renders a wait as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
