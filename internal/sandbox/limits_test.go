package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// exportStatus calls the export and drains it; it returns the status and
// Retry-After.
func exportStatus(t *testing.T, base, tok string) (int, string) {
	t.Helper()
	resp := getExport(t, base, tok)
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func adminGet(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimit(t *testing.T) {
	clk := newClock()
	cfg := oneTenant()
	cfg.Now = clk.Now
	cfg.Applications[0].RateLimit = &RateLimit{Rate: 0.5, Burst: 3}
	_, base := start(t, cfg)
	tok := token(t, base, demoForm(DemoTenantFjordvik))

	for i := 1; i <= 3; i++ {
		if st, _ := exportStatus(t, base, tok); st != 200 {
			t.Fatalf("request %d within the burst: %d", i, st)
		}
	}
	st, ra := exportStatus(t, base, tok)
	if st != http.StatusTooManyRequests || ra != "2" {
		t.Fatalf("request 4: %d Retry-After %q; want 429 and 2 (one token at 0.5/s)", st, ra)
	}
	clk.Add(1500 * time.Millisecond)
	if st, ra := exportStatus(t, base, tok); st != 429 || ra != "1" {
		t.Fatalf("after 1.5s: %d Retry-After %q; want 429 and 1", st, ra)
	}
	clk.Add(500 * time.Millisecond)
	if st, _ := exportStatus(t, base, tok); st != 200 {
		t.Fatalf("after 2s: %d, want 200", st)
	}
	if st, _ := exportStatus(t, base, tok); st != 429 {
		t.Fatalf("right after: %d, want 429", st)
	}

	var stats Stats
	adminGet(t, base+"/_sandbox/stats", &stats)
	a := stats.Applications[DemoClientID]
	if a.Requests != 7 || a.Served != 4 || a.Throttled != 3 || a.RateLimited != 3 || a.QuotaExceeded != 0 || a.TokensIssued != 1 {
		t.Errorf("stats %+v; want 7 requests, 4 served, 3 throttled by the rate limit, 1 token", a)
	}
}

func TestQuotas(t *testing.T) {
	clk := newClock() // 2026-03-10 12:00 UTC
	cfg := oneTenant()
	cfg.Now = clk.Now
	cfg.QuotaTimezone = "UTC"
	cfg.Applications[0].Quota = Quota{Daily: 3, Monthly: 5}
	_, base := start(t, cfg)
	tok := token(t, base, demoForm(DemoTenantFjordvik))

	for i := 1; i <= 3; i++ {
		if st, _ := exportStatus(t, base, tok); st != 200 {
			t.Fatalf("request %d of the daily quota: %d", i, st)
		}
	}
	st, ra := exportStatus(t, base, tok)
	if st != 429 || ra != "43200" {
		t.Fatalf("request 4 of the day: %d Retry-After %q; want 429 and 43200 (midnight)", st, ra)
	}
	var a AppStats
	adminGet(t, base+"/_sandbox/stats/"+DemoClientID, &a)
	if a.DailyUsed != 3 || a.MonthlyUsed != 3 || a.DailyLimit != 3 || a.QuotaExceeded != 1 {
		t.Errorf("stats after day 1: %+v", a)
	}

	clk.Set(time.Date(2026, 3, 11, 0, 0, 1, 0, time.UTC))
	tok = token(t, base, demoForm(DemoTenantFjordvik)) // the first one expired
	for i := 4; i <= 5; i++ {
		if st, _ := exportStatus(t, base, tok); st != 200 {
			t.Fatalf("request %d of the month: %d", i, st)
		}
	}
	st, ra = exportStatus(t, base, tok)
	if want := int64(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Sub(clk.Now()) / time.Second); st != 429 || ra != itoa(want) {
		t.Fatalf("request 6 of the month: %d Retry-After %q; want 429 and %d (first of April)", st, ra, want)
	}
	clk.Set(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	if st, _ := exportStatus(t, base, token(t, base, demoForm(DemoTenantFjordvik))); st != 200 {
		t.Fatalf("new month: %d", st)
	}
	adminGet(t, base+"/_sandbox/stats/"+DemoClientID, &a)
	if a.Served != 6 || a.Throttled != 2 || a.QuotaExceeded != 2 || a.DailyUsed != 1 || a.MonthlyUsed != 1 {
		t.Errorf("stats at the end: %+v", a)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestAdminCalls(t *testing.T) {
	s, base := start(t, DemoConfig())
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := do("POST", "/_sandbox/tenants/"+strings.ToUpper(DemoTenantNordstrand)+"/advance", ""); st != 200 || !strings.Contains(body, `"generation": 1`) {
		t.Errorf("advance: %d %s", st, body)
	}
	var ts TenantState
	adminGet(t, base+"/_sandbox/tenants/"+DemoTenantNordstrand, &ts)
	if ts.Generation != 1 || ts.Name != "Nordstrand kommune" {
		t.Errorf("tenant %+v", ts)
	}
	var all []TenantState
	adminGet(t, base+"/_sandbox/tenants", &all)
	if len(all) != 3 || all[0].Generation != 0 || all[2].Generation != 1 {
		t.Errorf("tenants %+v", all)
	}
	if st, _ := do("POST", "/_sandbox/tenants/00000000-0000-0000-0000-000000000000/advance", ""); st != 404 {
		t.Errorf("advance unknown tenant: %d", st)
	}

	if st, body := do("PUT", "/_sandbox/faults/"+DemoTenantFjordvik, `{"error_rate":0.25,"latency":"150ms"}`); st != 200 {
		t.Fatalf("set faults: %d %s", st, body)
	}
	if f := s.faultsFor(DemoTenantFjordvik); f.ErrorRate != 0.25 || f.Latency.D() != 150*time.Millisecond {
		t.Errorf("faults in force %+v", f)
	}
	if st, _ := do("PUT", "/_sandbox/faults", `{"content_type":"text/html"}`); st != 200 {
		t.Fatal("set global faults")
	}
	if f := s.faultsFor(DemoTenantFjordvik); f.ContentType != "text/html" || f.ErrorRate != 0.25 {
		t.Errorf("tenant over global: %+v", f)
	}
	var fs FaultState
	adminGet(t, base+"/_sandbox/faults", &fs)
	if fs.Global.ContentType != "text/html" || fs.Tenants[DemoTenantFjordvik].Latency.D() != 150*time.Millisecond {
		t.Errorf("fault state %+v", fs)
	}
	for _, bad := range []string{`{"error_rate":2}`, `{"latency":"soon"}`, `{"eror_rate":0.1}`, `not json`} {
		if st, _ := do("PUT", "/_sandbox/faults", bad); st != 400 {
			t.Errorf("PUT faults %s: %d, want 400", bad, st)
		}
	}
	if st, _ := do("PUT", "/_sandbox/faults/00000000-0000-0000-0000-000000000000", `{}`); st != 404 {
		t.Errorf("faults of unknown tenant: %d", st)
	}
	do("DELETE", "/_sandbox/faults/"+DemoTenantFjordvik, "")
	do("DELETE", "/_sandbox/faults", "")
	if f := s.faultsFor(DemoTenantFjordvik); !f.IsZero() {
		t.Errorf("faults after DELETE: %+v", f)
	}
	if st, _ := do("GET", "/_sandbox/nothing", ""); st != 404 {
		t.Errorf("unknown admin call: %d", st)
	}
}

// TestRateLimitIsPerApplication checks that each application has a bucket
// of its own: one application's burst used up does not throttle another
// linked to the same tenant, and the stats count each apart.
func TestRateLimitIsPerApplication(t *testing.T) {
	clk := newClock()
	cfg := oneTenant()
	cfg.Now = clk.Now
	cfg.Applications[0].RateLimit = &RateLimit{Rate: 1, Burst: 2}
	cfg.Applications = append(cfg.Applications, Application{ClientID: "other", ClientSecret: "other-secret",
		Scopes: []string{ScopeLMSExport}, Tenants: []string{DemoTenantFjordvik}, RateLimit: &RateLimit{Rate: 1, Burst: 2}})
	_, base := start(t, cfg)
	first := token(t, base, demoForm(DemoTenantFjordvik))
	form := demoForm(DemoTenantFjordvik)
	form.Set("client_id", "other")
	form.Set("client_secret", "other-secret")
	second := token(t, base, form)

	for i, want := range []int{200, 200, 429} {
		if st, _ := exportStatus(t, base, first); st != want {
			t.Fatalf("%s request %d: %d, want %d", DemoClientID, i+1, st, want)
		}
	}
	for i, want := range []int{200, 200, 429} {
		if st, _ := exportStatus(t, base, second); st != want {
			t.Fatalf("other request %d: %d, want %d", i+1, st, want)
		}
	}
	var stats Stats
	adminGet(t, base+"/_sandbox/stats", &stats)
	for _, id := range []string{DemoClientID, "other"} {
		if a := stats.Applications[id]; a.Requests != 3 || a.Served != 2 || a.RateLimited != 1 {
			t.Errorf("%s: %+v, want 3 requests, 2 served, 1 rate limited", id, a)
		}
	}
}

// TestQuotaDayInOslo: with quota_timezone Europe/Oslo the daily quota runs
// from Oslo's midnight, which is 23:00 UTC in winter (CET) and 22:00 UTC in
// summer (CEST); Retry-After names the wait until then.
func TestQuotaDayInOslo(t *testing.T) {
	for _, c := range []struct {
		name      string
		now       time.Time // UTC
		midnight  time.Time // the next Oslo midnight, in UTC
		afterward time.Time // just past it
	}{
		{"winter", time.Date(2026, 1, 15, 20, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 23, 0, 0, 0, time.UTC), time.Date(2026, 1, 15, 23, 0, 1, 0, time.UTC)},
		{"summer", time.Date(2026, 7, 15, 20, 0, 0, 0, time.UTC), time.Date(2026, 7, 15, 22, 0, 0, 0, time.UTC), time.Date(2026, 7, 15, 22, 0, 1, 0, time.UTC)},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			clk.Set(c.now)
			cfg := oneTenant()
			cfg.Now = clk.Now
			cfg.QuotaTimezone = "Europe/Oslo"
			cfg.Applications[0].Quota = Quota{Daily: 1}
			_, base := start(t, cfg)
			tok := token(t, base, demoForm(DemoTenantFjordvik))
			if st, _ := exportStatus(t, base, tok); st != 200 {
				t.Fatalf("the day's one request: %d", st)
			}
			st, ra := exportStatus(t, base, tok)
			if want := itoa(int64(c.midnight.Sub(c.now) / time.Second)); st != 429 || ra != want {
				t.Fatalf("second request: %d Retry-After %q; want 429 and %s (Oslo's midnight)", st, ra, want)
			}
			clk.Set(c.afterward)
			if st, _ := exportStatus(t, base, token(t, base, demoForm(DemoTenantFjordvik))); st != 200 {
				t.Fatalf("just past Oslo's midnight: %d, want the new day's quota", st)
			}
		})
	}
}
