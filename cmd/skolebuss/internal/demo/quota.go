package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/quota"
)

// quotaEvery is how often the demo reads each application's quota use.
const quotaEvery = 2 * time.Second

// quotaLines are each application's quota use as the fetchers share it, a
// line each: "quota skolebuss-demo: daily 12/10000, monthly 12/200000, ok".
func (p *pipeline) quotaLines(ctx context.Context) []string {
	l := quota.New(p.bus.Stores.RateLimit, p.bus.Stores.Quota, nil, nil)
	now := time.Now()
	var lines []string
	for _, a := range p.cfg.Applications {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := l.State(ctx, a.Name, app.Limits(p.cfg, a), now)
		cancel()
		if err != nil {
			lines = append(lines, fmt.Sprintf("quota %s: not readable: %v", a.Name, err))
			continue
		}
		var parts []string
		state := "ok"
		for _, ps := range []quota.PeriodState{st.Daily, st.Monthly} {
			if ps.Limit == 0 {
				parts = append(parts, fmt.Sprintf("%s %d (no limit)", ps.Period, ps.Used))
				continue
			}
			parts = append(parts, fmt.Sprintf("%s %d/%d", ps.Period, ps.Used, ps.Limit))
			if ps.Paused {
				state = fmt.Sprintf("paused until %s", ps.Reset.Format(time.DateTime))
			}
		}
		if !st.BlockedUntil.IsZero() {
			state = "blocked by the upstream until " + st.BlockedUntil.Format(time.TimeOnly)
		}
		lines = append(lines, fmt.Sprintf("quota %s: %s, %s", a.Name, strings.Join(parts, ", "), state))
	}
	return lines
}
