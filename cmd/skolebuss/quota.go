package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/quota"
)

func init() {
	register(command{
		name:    "quota",
		summary: "each application's use of its upstream quotas from the shared store: used, remaining, projection, paused or blocked",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return quotaCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const quotaHelp = `Usage: skolebuss quota [--application NAME] [--alerts N] [--json] [flags]

Prints each application's use of its daily and monthly upstream quotas as the
fetchers share it (the key-value bucket every replica counts in): the period
(a day or month in upstream.quota_zone), requests used, the limit and what
remains, when the period resets, when the quota runs out at the period's pace
so far, and the state: ok, paused (used up: jobs wait for the reset) or
blocked (the upstream asked every fetcher to wait, Retry-After). Then the last
N quota alerts of each application (alerts.quota.<application>: thresholds,
pauses and resumptions). --json prints one JSON object per application, with
its alerts. An application the configuration does not list is refused (exit 2).

Connection flags as for skolebuss export.

Flags:
`

// quotaRow is one application's state as printed by --json.
type quotaRow struct {
	quota.State
	Alerts []messages.QuotaAlert `json:"alerts"`
}

func quotaCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss quota", quotaHelp, stderr)
	only := fs.String("application", "", "only application `NAME`")
	alerts := fs.Int("alerts", 5, "the last `N` alerts of each application (0: none)")
	asJSON := fs.Bool("json", false, "one JSON object per application instead of a table")
	if err := parseOps(fs, args, daemon.Range{Flag: "alerts", Min: 0, Max: 1000}); err != nil {
		return err
	}
	cfg, err := o.load(getenv)
	if err != nil {
		return err
	}
	found := false
	for _, a := range cfg.Applications {
		found = found || *only == "" || a.Name == *only
	}
	if !found {
		var known []string
		for _, a := range cfg.Applications {
			known = append(known, a.Name)
		}
		return fmt.Errorf("%w: --application %q is not in %s (known: %s)", errUsage, *only, configName(cfg), strings.Join(known, ", "))
	}
	nc, js, err := o.connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	counts, err := js.KeyValue(ctx, bus.KVQuota)
	if err != nil {
		return explainStore(bus.KVQuota, err)
	}
	rate, err := js.KeyValue(ctx, bus.KVRateLimit)
	if err != nil {
		return explainStore(bus.KVRateLimit, err)
	}
	l := quota.New(rate, counts, nil, nil)
	now := time.Now()
	var rows []quotaRow
	for _, a := range cfg.Applications {
		if *only != "" && a.Name != *only {
			continue
		}
		st, err := l.State(ctx, a.Name, app.Limits(cfg, a), now)
		if err != nil {
			return fmt.Errorf("quota of %s: %w", a.Name, err)
		}
		row := quotaRow{State: st, Alerts: []messages.QuotaAlert{}}
		if *alerts > 0 {
			if row.Alerts, err = readQuotaAlerts(ctx, js, a.Name, *alerts); err != nil {
				return explainBus(err)
			}
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	return printQuota(stdout, rows, now)
}

func printQuota(w io.Writer, rows []quotaRow, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "application\tperiod\tused\tlimit\tremaining\tresets\truns out at this pace\tstate")
	for _, r := range rows {
		for _, p := range []quota.PeriodState{r.Daily, r.Monthly} {
			limit, remaining, runsOut := "none", "-", "-"
			if p.Limit > 0 {
				limit = fmt.Sprintf("%d (%.0f%%)", p.Limit, 100*float64(p.Used)/float64(p.Limit))
				remaining = fmt.Sprint(p.Remaining)
				switch {
				case p.Paused:
					runsOut = "used up"
				case p.Exhausts.IsZero():
				case p.ExhaustsBeforeReset:
					runsOut = fmt.Sprintf("%s (in %s)", stamp(p.Exhausts, r.Zone), p.Exhausts.Sub(now).Round(time.Minute))
				default:
					runsOut = "lasts the period"
				}
			}
			fmt.Fprintf(tw, "%s\t%s %s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Application, p.Period, p.Key, p.Used, limit, remaining,
				stamp(p.Reset, r.Zone), runsOut, quotaState(r.State, p))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "\nperiods and times in the upstream's zone, %s\n", rows[0].Zone)
	}
	for _, r := range rows {
		if len(r.Alerts) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nlast alerts of %s:\n", r.Application)
		for _, a := range r.Alerts {
			what := a.Kind
			switch a.Kind {
			case quota.KindThreshold:
				what = fmt.Sprintf("reached %.0f%%", 100*a.Threshold)
			case quota.KindPaused:
				what = "paused until " + stamp(a.Until, r.Zone)
			}
			fmt.Fprintf(w, "  %s  %s %s  %s  (%d of %d)\n", stamp(a.At, r.Zone), a.Period, a.PeriodKey, what, a.Used, a.Limit)
		}
	}
	return nil
}

// quotaState is ok, paused (the quota is used up) or blocked (the upstream's
// Retry-After), with until when.
func quotaState(s quota.State, p quota.PeriodState) string {
	var parts []string
	if p.Paused {
		parts = append(parts, "paused until "+stamp(p.Reset, s.Zone))
	}
	if !s.BlockedUntil.IsZero() {
		parts = append(parts, "blocked by the upstream until "+stamp(s.BlockedUntil, s.Zone))
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, ", ")
}

func stamp(t time.Time, zone string) string {
	if loc, err := time.LoadLocation(zone); err == nil {
		t = t.In(loc)
	}
	return t.Format("2006-01-02 15:04:05")
}

// readQuotaAlerts reads the last n alerts of app from the ALERTS stream,
// oldest first.
func readQuotaAlerts(ctx context.Context, js jetstream.JetStream, application string, n int) ([]messages.QuotaAlert, error) {
	subj, err := messages.QuotaAlertSubject(application)
	if err != nil {
		return nil, err
	}
	stream, err := js.Stream(ctx, bus.StreamAlerts)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamAlerts, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bus.StreamAlerts, err)
	}
	out := []messages.QuotaAlert{}
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", bus.StreamAlerts, err)
		}
		got := 0
		var pending uint64
		for m := range batch.Messages() {
			got++
			if meta, err := m.Metadata(); err == nil {
				pending = meta.NumPending
			}
			a, err := messages.Decode[messages.QuotaAlert](&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				continue // not an alert this version reads
			}
			out = append(out, a)
			if len(out) > n {
				out = out[1:]
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read %s: %w", bus.StreamAlerts, err)
		}
		if got == 0 || pending == 0 {
			return out, nil
		}
	}
}

// explainStore says that a bucket the fetchers create is missing.
func explainStore(bucket string, err error) error {
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("key-value bucket %s: %w\n(start the pipeline once, so that it creates its buckets)", bucket, err)
	}
	return fmt.Errorf("key-value bucket %s: %w", bucket, err)
}
