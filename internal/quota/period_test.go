package quota

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
)

func oslo(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The upstream's days and months in Europe/Oslo: winter (UTC+1), summer
// (UTC+2), the 23-hour day in March and the 25-hour day in October, and a
// month that begins in Oslo while it is still the last day of the month in
// UTC.
func TestPeriodsInTheUpstreamsZone(t *testing.T) {
	loc := oslo(t)
	cases := []struct {
		name, at        string
		day, month      string
		dayStart, reset string // the day's start and end, UTC
		monthReset      string
	}{
		{"winter evening, a new day in Oslo", "2026-01-14T23:30:00Z", "2026-01-15", "2026-01",
			"2026-01-14T23:00:00Z", "2026-01-15T23:00:00Z", "2026-01-31T23:00:00Z"},
		{"summer evening, a new day in Oslo", "2026-07-14T22:30:00Z", "2026-07-15", "2026-07",
			"2026-07-14T22:00:00Z", "2026-07-15T22:00:00Z", "2026-07-31T22:00:00Z"},
		{"summer, before Oslo's midnight", "2026-07-14T21:59:59.999Z", "2026-07-14", "2026-07",
			"2026-07-13T22:00:00Z", "2026-07-14T22:00:00Z", "2026-07-31T22:00:00Z"},
		{"the 23-hour day the clocks go forward", "2026-03-29T12:00:00Z", "2026-03-29", "2026-03",
			"2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-31T22:00:00Z"},
		{"the 25-hour day the clocks go back", "2026-10-25T12:00:00Z", "2026-10-25", "2026-10",
			"2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-31T23:00:00Z"},
		{"November in Oslo, still October in UTC", "2026-10-31T23:30:00Z", "2026-11-01", "2026-11",
			"2026-10-31T23:00:00Z", "2026-11-01T23:00:00Z", "2026-11-30T23:00:00Z"},
		{"a new year in Oslo", "2026-12-31T23:00:00Z", "2027-01-01", "2027-01",
			"2026-12-31T23:00:00Z", "2027-01-01T23:00:00Z", "2027-01-31T23:00:00Z"},
	}
	for _, c := range cases {
		at := utc(c.at)
		d, m := Periods(at, loc)
		if d.Key != c.day || m.Key != c.month {
			t.Errorf("%s: periods %s and %s, want %s and %s", c.name, d.Key, m.Key, c.day, c.month)
		}
		if !d.Start.Equal(utc(c.dayStart)) || !d.End.Equal(utc(c.reset)) {
			t.Errorf("%s: day from %s to %s, want %s to %s", c.name, d.Start.UTC(), d.End.UTC(), c.dayStart, c.reset)
		}
		if !m.End.Equal(utc(c.monthReset)) || m.Start.After(at) || !d.Start.Before(at.Add(time.Nanosecond)) {
			t.Errorf("%s: month from %s to %s, want the end %s", c.name, m.Start.UTC(), m.End.UTC(), c.monthReset)
		}
	}
	if d, _ := Periods(utc("2026-03-29T12:00:00Z"), loc); d.End.Sub(d.Start) != 23*time.Hour {
		t.Errorf("the March day is %v long", d.End.Sub(d.Start))
	}
	if d, _ := Periods(utc("2026-10-25T12:00:00Z"), loc); d.End.Sub(d.Start) != 25*time.Hour {
		t.Errorf("the October day is %v long", d.End.Sub(d.Start))
	}
	// UTC by default.
	if d, m := Periods(utc("2026-10-31T23:30:00Z"), nil); d.Key != "2026-10-31" || m.Key != "2026-10" || !d.End.Equal(utc("2026-11-01T00:00:00Z")) {
		t.Errorf("UTC: %+v %+v", d, m)
	}
}

// A quota counted in Oslo's days: used up late on the day the clocks go
// back, refused with a wait to Oslo's midnight (not UTC's), paused once,
// resumed once when Oslo's next day begins, while UTC still has the old day.
// Across the month boundary the monthly quota resets with Oslo's month.
func TestQuotaPausesAndResumesInTheUpstreamsDay(t *testing.T) {
	rate, counts := buckets(t)
	var mu sync.Mutex
	var alerts []Alert
	l := New(rate, counts, func(_ context.Context, a Alert) error {
		mu.Lock()
		alerts = append(alerts, a)
		mu.Unlock()
		return nil
	}, nil)
	loc := oslo(t)
	lim := Limits{Daily: 3, Monthly: 5, AlertAt: []float64{1}, Zone: loc}
	ctx := context.Background()
	at := func(s string) { l.now = func() time.Time { return utc(s) } }

	at("2026-10-25T20:00:00Z") // 21:00 in Oslo
	for range 3 {
		if _, err := l.Take(ctx, "app", lim); err != nil {
			t.Fatal(err)
		}
	}
	at("2026-10-25T22:59:59.5Z") // 23:59:59.5 in Oslo, the 25-hour day
	for range 2 {
		_, err := l.Take(ctx, "app", lim)
		if d := waitOf(err); d != 500*time.Millisecond {
			t.Fatalf("refused at 23:59:59.5 Oslo: %v (wait %v), want a wait to Oslo's midnight", err, d)
		}
	}
	at("2026-10-25T23:00:00Z") // midnight in Oslo, still the 25th in UTC
	u, err := l.Take(ctx, "app", lim)
	if err != nil || u.Daily != 1 || u.Monthly != 4 {
		t.Fatalf("the first request of Oslo's new day: %+v %v, want 1 of the day and 4 of the month", u, err)
	}
	if _, err := l.Take(ctx, "app", lim); err != nil {
		t.Fatal(err)
	}
	at("2026-10-31T22:59:00Z") // 23:59 on the 31st in Oslo: the month is used up
	_, err = l.Take(ctx, "app", lim)
	if d := waitOf(err); d != time.Minute {
		t.Fatalf("the month used up at 23:59 Oslo: %v (wait %v), want a minute", err, d)
	}
	at("2026-10-31T23:00:00Z") // November in Oslo, still October in UTC
	if u, err := l.Take(ctx, "app", lim); err != nil || u.Monthly != 1 || u.Daily != 1 {
		t.Fatalf("the first request of Oslo's November: %+v %v", u, err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"threshold daily 2026-10-25", "paused daily 2026-10-25", "resumed daily 2026-10-26",
		"threshold monthly 2026-10", "paused monthly 2026-10", "resumed monthly 2026-11",
	}
	var got []string
	for _, a := range alerts {
		got = append(got, a.Kind+" "+a.Period+" "+a.PeriodKey)
	}
	if len(got) != len(want) {
		t.Fatalf("alerts %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("alerts %q, want %q", got, want)
		}
	}
	if p := alerts[1]; !p.Until.Equal(utc("2026-10-25T23:00:00Z")) {
		t.Errorf("the pause ends %s, want Oslo's midnight", p.Until)
	}
}

func waitOf(err error) time.Duration {
	if err == nil {
		return -1
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe.RetryAfter
	}
	return -1
}

// State is the shared figure: a replica that counted nothing reads what
// another counted, the projection follows the pace, and at the period's
// reset the use falls to 0 and the pause ends without any request.
func TestStateIsSharedAndResetsWithThePeriod(t *testing.T) {
	rate, counts := buckets(t)
	a, b := New(rate, counts, nil, nil), New(rate, counts, nil, nil)
	loc := oslo(t)
	lim := Limits{Daily: 40, Monthly: 1000, Zone: loc}
	ctx := context.Background()
	a.now = func() time.Time { return utc("2026-03-29T09:00:00Z") } // 11:00 in Oslo, 10 hours into a 23-hour day
	for range 20 {
		if _, err := a.Take(ctx, "app", lim); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.State(ctx, "app", lim, utc("2026-03-29T09:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	d := st.Daily
	if d.Used != 20 || d.Remaining != 20 || d.Paused || st.Zone != "Europe/Oslo" {
		t.Fatalf("the other replica reads %+v", st)
	}
	// 20 in 10 hours: the other 20 take 10 more hours, past the reset at 22:00 UTC.
	if !d.Exhausts.Equal(utc("2026-03-29T19:00:00Z")) || !d.ExhaustsBeforeReset {
		t.Errorf("projected exhaustion %s (before reset %v), want 19:00 UTC, before the reset", d.Exhausts, d.ExhaustsBeforeReset)
	}
	for range 20 {
		if _, err := a.Take(ctx, "app", lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Take(ctx, "app", lim); waitOf(err) != 13*time.Hour {
		t.Fatalf("used up: %v (wait %v), want 13h to Oslo's midnight", err, waitOf(err))
	}
	if st, _ := b.State(ctx, "app", lim, utc("2026-03-29T21:59:59Z")); !st.Daily.Paused || st.Daily.Used != 40 {
		t.Errorf("before the reset: %+v", st.Daily)
	}
	st, err = b.State(ctx, "app", lim, utc("2026-03-29T22:00:00Z"))
	if err != nil || st.Daily.Used != 0 || st.Daily.Paused || st.Daily.Remaining != 40 || st.Daily.Key != "2026-03-30" || st.Monthly.Used != 40 {
		t.Errorf("after the reset: %+v %v", st, err)
	}
}
