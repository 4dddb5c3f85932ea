package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Figures are one run's measurements (or the medians of several).
type Figures struct {
	// Records in the export (parsed) and its size in bytes.
	Records     int   `json:"records"`
	ExportBytes int64 `json:"export_bytes"`
	// Fetch is the fetch stage's handler for the first export: token,
	// download from the sandbox into the object store, FetchedExport.
	Fetch time.Duration `json:"fetch_ns"`

	// Events are the change events of the first export, First the time from
	// its FetchedExport to its export.completed (server timestamps), of
	// which FirstDiffed went to the diff before publishing (0 if the
	// publisher process did not say). EventRate = Events / First.
	Events      int           `json:"events"`
	First       time.Duration `json:"first_export_ns"`
	FirstDiffed time.Duration `json:"first_export_diffed_ns"`
	EventRate   float64       `json:"event_rate"`
	// EventBytes is the events' average stored size; RawRate the rate of
	// asynchronous publishes of Events messages of that size with unique
	// Nats-Msg-Id on the same server; RateRatio = EventRate / RawRate.
	EventBytes int     `json:"event_bytes"`
	RawRate    float64 `json:"raw_rate"`
	RateRatio  float64 `json:"rate_ratio"`

	// Reexport is the unchanged re-export from FetchedExport to
	// export.completed; Parse the time to parse the same export alone;
	// ReexportRatio = Reexport / Parse.
	Reexport      time.Duration `json:"reexport_ns"`
	Parse         time.Duration `json:"parse_ns"`
	ReexportRatio float64       `json:"reexport_ratio"`

	// PeakRSS is the larger of the two publisher processes' peak RSS, in
	// bytes.
	PeakRSS         int64 `json:"peak_rss_bytes"`
	PeakRSSFirst    int64 `json:"peak_rss_first_bytes"`
	PeakRSSReexport int64 `json:"peak_rss_reexport_bytes"`

	// Fanout is the first export fanned out to each of Config's vendor
	// counts, in that order.
	Fanout []FanoutFigures `json:"fanout,omitempty"`
}

// Check is one figure against its target.
type Check struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"`
	Target string  `json:"target"`
	Pass   bool    `json:"pass"`
}

// Machine is where the figures were taken.
type Machine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu,omitempty"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	// LoadAvg and LoadAvgAfter are /proc/loadavg's 1, 5 and 15 minute
	// averages before and after the runs ("" where there is none): other
	// work on the machine skews the figures.
	LoadAvg      string `json:"loadavg_before,omitempty"`
	LoadAvgAfter string `json:"loadavg_after,omitempty"`
}

// Report is a whole measurement.
type Report struct {
	Size    string    `json:"size"`
	Repeat  int       `json:"repeat"`
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`
	Runs    []Figures `json:"runs"`
	// Median is each figure's median over Runs (ratios included: the
	// median of the runs' ratios).
	Median Figures `json:"median"`
	// Checks are the medians against the pipeline's targets.
	Checks []Check `json:"checks"`
}

// Passed reports whether every check passed.
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return len(r.Checks) > 0
}

func checks(m Figures) []Check {
	const mib = 1 << 20
	cs := []Check{
		{Name: "event rate / raw rate", Value: m.RateRatio, Target: fmt.Sprintf(">= %.1f", TargetRateRatio),
			Pass: m.RateRatio >= TargetRateRatio},
		{Name: "unchanged re-export / parse", Value: m.ReexportRatio, Target: fmt.Sprintf("<= %.1f", TargetReexportRatio),
			Pass: m.ReexportRatio > 0 && m.ReexportRatio <= TargetReexportRatio},
		{Name: "publisher peak RSS", Value: float64(m.PeakRSS) / mib, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", TargetPeakRSS/mib), Pass: m.PeakRSS > 0 && m.PeakRSS < TargetPeakRSS},
	}
	for _, ff := range m.Fanout {
		if ff.Vendors == TargetFanoutVendors {
			cs = append(cs, Check{Name: FanoutCheckName(ff.Vendors), Value: ff.RateRatio,
				Target: fmt.Sprintf(">= %.1f", TargetFanoutRatio), Pass: ff.RateRatio >= TargetFanoutRatio})
		}
	}
	return cs
}

// FanoutCheckName is the name of the check of the fan-out to n vendors.
func FanoutCheckName(n int) string { return fmt.Sprintf("fan-out to %d vendors / raw rate", n) }

// median is each field's median over runs (the mean of the two middle
// values for an even count).
func median(runs []Figures) Figures {
	f := func(get func(Figures) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		slices.Sort(v)
		n := len(v)
		if n == 0 {
			return 0
		}
		if n%2 == 1 {
			return v[n/2]
		}
		return (v[n/2-1] + v[n/2]) / 2
	}
	d := func(get func(Figures) time.Duration) time.Duration {
		return time.Duration(f(func(r Figures) float64 { return float64(get(r)) }))
	}
	i := func(get func(Figures) int64) int64 {
		return int64(f(func(r Figures) float64 { return float64(get(r)) }))
	}
	var fo []FanoutFigures
	if len(runs) > 0 {
		for k := range runs[0].Fanout {
			g := func(get func(FanoutFigures) float64) float64 {
				return f(func(r Figures) float64 { return get(r.Fanout[k]) })
			}
			fo = append(fo, FanoutFigures{Vendors: runs[0].Fanout[k].Vendors,
				Events:    int(g(func(x FanoutFigures) float64 { return float64(x.Events) })),
				Took:      time.Duration(g(func(x FanoutFigures) float64 { return float64(x.Took) })),
				EventRate: g(func(x FanoutFigures) float64 { return x.EventRate }),
				RawRate:   g(func(x FanoutFigures) float64 { return x.RawRate }),
				RateRatio: g(func(x FanoutFigures) float64 { return x.RateRatio })})
		}
	}
	return Figures{
		Fanout:          fo,
		Records:         int(i(func(r Figures) int64 { return int64(r.Records) })),
		ExportBytes:     i(func(r Figures) int64 { return r.ExportBytes }),
		Fetch:           d(func(r Figures) time.Duration { return r.Fetch }),
		Events:          int(i(func(r Figures) int64 { return int64(r.Events) })),
		First:           d(func(r Figures) time.Duration { return r.First }),
		FirstDiffed:     d(func(r Figures) time.Duration { return r.FirstDiffed }),
		EventRate:       f(func(r Figures) float64 { return r.EventRate }),
		EventBytes:      int(i(func(r Figures) int64 { return int64(r.EventBytes) })),
		RawRate:         f(func(r Figures) float64 { return r.RawRate }),
		RateRatio:       f(func(r Figures) float64 { return r.RateRatio }),
		Reexport:        d(func(r Figures) time.Duration { return r.Reexport }),
		Parse:           d(func(r Figures) time.Duration { return r.Parse }),
		ReexportRatio:   f(func(r Figures) float64 { return r.ReexportRatio }),
		PeakRSS:         i(func(r Figures) int64 { return r.PeakRSS }),
		PeakRSSFirst:    i(func(r Figures) int64 { return r.PeakRSSFirst }),
		PeakRSSReexport: i(func(r Figures) int64 { return r.PeakRSSReexport }),
	}
}

func machine() Machine {
	return Machine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPU: cpuModel(),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, LoadAvg: loadAvg()}
}

// loadAvg is the first three fields of /proc/loadavg, "" without it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// cpuModel is /proc/cpuinfo's first model name, "" without it.
func cpuModel() string {
	fh, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
