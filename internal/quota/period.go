package quota

import "time"

// The periods of the daily and monthly quotas are the upstream's days and
// months in its own zone (Limits.Zone, UTC when nil): a day there is 23 or 25
// hours long on the days its clocks change. Every function takes the instant
// it is asked about; none reads the clock.

// DayKey names the day t falls in, in loc: "2026-12-08".
func DayKey(t time.Time, loc *time.Location) string { return t.In(zone(loc)).Format("2006-01-02") }

// MonthKey names the month t falls in, in loc: "2026-12".
func MonthKey(t time.Time, loc *time.Location) string { return t.In(zone(loc)).Format("2006-01") }

// DayStart is the instant the day t falls in began, in loc.
func DayStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(zone(loc))
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, l.Location())
}

// NextDay is the instant the day after t's begins, in loc: when the daily
// quota resets.
func NextDay(t time.Time, loc *time.Location) time.Time {
	l := t.In(zone(loc))
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, l.Location())
}

// MonthStart is the instant the month t falls in began, in loc.
func MonthStart(t time.Time, loc *time.Location) time.Time {
	l := t.In(zone(loc))
	return time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, l.Location())
}

// NextMonth is the instant the month after t's begins, in loc: when the
// monthly quota resets.
func NextMonth(t time.Time, loc *time.Location) time.Time {
	l := t.In(zone(loc))
	return time.Date(l.Year(), l.Month()+1, 1, 0, 0, 0, 0, l.Location())
}

func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// Period is one of an application's quota periods at an instant.
type Period struct {
	Name  string    // "daily" or "monthly"
	Key   string    // "2026-12-08" or "2026-12"
	Start time.Time // when it began
	End   time.Time // when it ends: the quota resets
}

// Periods are the daily and the monthly period t falls in, in loc.
func Periods(t time.Time, loc *time.Location) (daily, monthly Period) {
	return Period{Name: "daily", Key: DayKey(t, loc), Start: DayStart(t, loc), End: NextDay(t, loc)},
		Period{Name: "monthly", Key: MonthKey(t, loc), Start: MonthStart(t, loc), End: NextMonth(t, loc)}
}
