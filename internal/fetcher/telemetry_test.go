package fetcher

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// sample is one line of a Prometheus text scrape.
type sample struct {
	name   string
	labels map[string]string
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape GETs /metrics over HTTP and returns each family's type and samples.
func scrape(t *testing.T, h http.Handler) (types map[string]string, samples []sample, text string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s %v", resp.Status, err)
	}
	types = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		end := strings.IndexAny(line, "{ ")
		s.name = line[:end]
		if line[end] == '{' {
			close := strings.LastIndexByte(line, '}')
			for _, m := range labelRE.FindAllStringSubmatch(line[end+1:close], -1) {
				if _, dup := s.labels[m[1]]; dup {
					t.Errorf("%s: label %s twice", s.name, m[1])
				}
				s.labels[m[1]] = m[2]
			}
		}
		samples = append(samples, s)
	}
	return types, samples, string(b)
}

// family is the family a sample belongs to (histograms and counters add
// suffixes to its name).
func family(name string, types map[string]string) string {
	if _, ok := types[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count", "_total"} {
		if f, ok := strings.CutSuffix(name, suf); ok {
			if _, ok := types[f]; ok {
				return f
			}
		}
	}
	return name
}

// After a run of the fetch stage with a success, a refusal by the token
// endpoint with a code of the set (invalid_tenant) and one with an OAuth
// error code the endpoint made up, the scrape of /metrics has
// every family of the stage with exactly its documented labels, each
// duration histogram in seconds with telemetry.SecondsBuckets, and reason
// values only from failure's set (the made-up code counted as "other"); and
// no log line of the stage carries an attribute twice.
func TestMetricsScrapeAfterARun(t *testing.T) {
	e := newEnv(t, smallSandbox())
	var logs waitfor.Buffer
	d := e.deps()
	d.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const hostile = "hostile_code_7f3a"
	e.setFaults(t, maaneby, sandbox.Faults{TokenError: hostile})
	cfg := e.config(map[string]quota.Limits{demoApp: {Daily: 1000, Monthly: 20000}, "noscope": {}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := Run(ctx, cfg, d); err != nil {
			t.Errorf("fetcher: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.request(t, fjordvik, demoApp, "ok")
	e.request(t, maaneby, demoApp, "hostile")
	e.request(t, nordstrand, "noscope", "not-linked")
	waitFor(t, 15*time.Second, "one export and two dead letters", func() bool {
		return len(e.fetchedExports(t)) == 1 && len(e.deadLetters(t)) == 2
	})
	waitFor(t, 5*time.Second, "three jobs counted", func() bool {
		rm, _ := e.tel.Collect(context.Background())
		return sumInt(rm, MetricJobs, "outcome", "ok")+sumInt(rm, MetricJobs, "outcome", "permanent") == 3
	})

	types, samples, text := scrape(t, e.tel.MetricsHandler())
	// The labels of each family, besides the exporter's otel_scope_* and a
	// histogram bucket's le.
	want := map[string][]string{
		"skolebuss_fetch_jobs_total":          {"outcome", "reason", "skolebuss_application"},
		"skolebuss_fetch_duration_seconds":    {"outcome", "skolebuss_application"},
		"skolebuss_fetch_bytes_total":         {"skolebuss_application"},
		"skolebuss_stage_duration_seconds":    {"stage"},
		"skolebuss_stage_messages_total":      {"outcome", "stage"},
		"skolebuss_quota_used":                {"period", "skolebuss_application"},
		"skolebuss_quota_limit":               {"period", "skolebuss_application"},
		"skolebuss_quota_remaining":           {"period", "skolebuss_application"},
		"skolebuss_quota_approach":            {"period", "skolebuss_application"},
		"skolebuss_quota_paused":              {"period", "skolebuss_application"},
		"skolebuss_quota_exhausts_in_seconds": {"period", "skolebuss_application"},
		"skolebuss_fetch_breaker":             {"skolebuss_tenant"},
	}
	// Observed only while the pace would use the quota up before its reset.
	optional := map[string]bool{"skolebuss_quota_exhausts_in_seconds": true}
	seen := map[string]bool{}
	buckets := map[string][]float64{} // per series: its boundaries
	for _, s := range samples {
		f := family(s.name, types)
		if !strings.HasPrefix(f, "skolebuss_") {
			continue
		}
		labels, ok := want[f]
		if !ok {
			t.Errorf("family %s (%s) is not expected: add it with its labels", f, s.name)
			continue
		}
		seen[f] = true
		var got []string
		for k := range s.labels {
			if !strings.HasPrefix(k, "otel_scope_") && !(k == "le" && strings.HasSuffix(s.name, "_bucket")) {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, labels) {
			t.Errorf("%s has labels %v, want %v", s.name, got, labels)
		}
		if r, ok := s.labels["reason"]; ok && r != "" && r != failure.LabelOther {
			if _, known := failure.Lookup(r); !known {
				t.Errorf("%s: reason %q is not in the set", s.name, r)
			}
		}
		if le, ok := s.labels["le"]; ok && le != "+Inf" {
			v, err := strconv.ParseFloat(le, 64)
			if err != nil {
				t.Fatalf("%s: le %q", s.name, le)
			}
			series := []string{f}
			for k, v := range s.labels {
				if k != "le" {
					series = append(series, k+"="+v)
				}
			}
			slices.Sort(series[1:])
			key := strings.Join(series, " ")
			buckets[key] = append(buckets[key], v)
		}
	}
	for f := range want {
		if !seen[f] && !optional[f] {
			t.Errorf("family %s missing from the scrape", f)
		}
	}
	for f, typ := range types {
		if typ == "histogram" && strings.HasPrefix(f, "skolebuss_") && !strings.HasSuffix(f, "_seconds") {
			t.Errorf("histogram %s is not in seconds", f)
		}
	}
	if len(buckets) == 0 {
		t.Fatal("no histogram buckets scraped")
	}
	for key, bs := range buckets {
		if !slices.Equal(bs, telemetry.SecondsBuckets) {
			t.Errorf("%s: buckets %v, want %v", key, bs, telemetry.SecondsBuckets)
		}
	}
	for _, r := range []string{`reason="other"`, `reason="invalid_tenant"`} {
		if !strings.Contains(text, r) {
			t.Errorf("the scrape lacks %s", r)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
	if strings.Contains(text, hostile) {
		t.Errorf("the upstream's made-up code became a label value")
	}

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	withStage := 0
	for _, l := range lines {
		switch n := strings.Count(l, " stage="); {
		case n > 1:
			t.Errorf("a log line repeats the stage: %s", l)
		case n == 1:
			withStage++
		}
		for _, key := range []string{"tenant", "component", "app", "application"} {
			if strings.Count(l, " "+key+"=") > 1 {
				t.Errorf("a log line repeats %s: %s", key, l)
			}
		}
	}
	if withStage < 3 {
		t.Errorf("%d of %d log lines name the stage; the check saw nothing", withStage, len(lines))
	}
}
