package flytapi

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// These tests run against the sandbox upstream over real HTTP.

const tenantTiny = sandbox.DemoTenantFjordvik

// clock is a settable clock for the sandbox (tokens, limits).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func startSandbox(t *testing.T, mod func(*sandbox.Config)) (*sandbox.Server, string) {
	t.Helper()
	cfg := sandbox.DemoConfig()
	if mod != nil {
		mod(&cfg)
	}
	s, err := sandbox.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts.URL
}

func demoClient(t *testing.T, base string, log *logBuf, mod func(*Config)) *Client {
	c, _ := newClient(t, base, sandbox.DemoClientID, sandbox.DemoClientSecret, []string{sandbox.ScopeLMSExport}, log, mod)
	return c
}

// wellFormed reads r to its end as XML and returns the number of elements.
func wellFormed(t *testing.T, r io.Reader) int {
	t.Helper()
	d := xml.NewDecoder(r)
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	n := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("export is not well-formed XML after %d elements: %v", n, err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			n++
		}
	}
}

func TestSandboxFetchesAWholeExport(t *testing.T) {
	dep, sunset := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	sb, base := startSandbox(t, func(c *sandbox.Config) { c.Deprecation, c.Sunset = &dep, &sunset })
	var log logBuf
	c := demoClient(t, base, &log, nil)
	exp, err := c.FetchExport(context.Background(), "app", tenantTiny)
	if err != nil {
		t.Fatal(err)
	}
	n := wellFormed(t, exp.Body)
	if err := exp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Errorf("only %d elements in the tiny export", n)
	}
	if !strings.HasPrefix(exp.ContentType, "application/xml") || exp.APIVersion != sandbox.DefaultAPIVersion || exp.ContentLength != -1 {
		t.Errorf("export = %+v", exp)
	}
	if exp.Deprecation != "@1767225600" || exp.Sunset != "Wed, 30 Jun 2027 00:00:00 GMT" {
		t.Errorf("Deprecation %q, Sunset %q", exp.Deprecation, exp.Sunset)
	}
	if !strings.Contains(log.String(), "announces its deprecation") {
		t.Errorf("no deprecation warning logged:\n%s", log.String())
	}
	if st := sb.StatsSnapshot().Applications[sandbox.DemoClientID]; st.Served != 1 || st.TokensIssued != 1 {
		t.Errorf("sandbox stats: %+v", st)
	}
	if strings.Contains(log.String(), sandbox.DemoClientSecret) {
		t.Error("the log shows the client secret")
	}
}

// A token the sandbox rejects (it expired early: the token_lifetime fault)
// is dropped, a new one fetched, and the request tried once more.
func TestSandboxRetriesOnceAfter401WithANewToken(t *testing.T) {
	clk := &clock{t: time.Now()}
	sb, base := startSandbox(t, func(c *sandbox.Config) { c.Now = clk.Now })
	if err := sb.SetFaults(tenantTiny, sandbox.Faults{TokenLifetime: sandbox.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	c := demoClient(t, base, nil, nil)
	fetch := func() {
		t.Helper()
		exp, err := c.FetchExport(context.Background(), "app", tenantTiny)
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, exp.Body)
		exp.Body.Close()
	}
	fetch()
	clk.Add(5 * time.Second) // the cached token (expires_in 3600) is now expired upstream
	fetch()
	st := sb.StatsSnapshot().Applications[sandbox.DemoClientID]
	if st.TokensIssued != 2 || st.Served != 2 {
		t.Errorf("tokens issued %d (want 2), served %d (want 2)", st.TokensIssued, st.Served)
	}
}

func TestSandboxErrorClasses(t *testing.T) {
	cases := []struct {
		name   string
		faults sandbox.Faults
		client func(t *testing.T, base string) *Client
		class  failure.Class
		reason string
		wait   time.Duration
		// dated: Retry-After came as an HTTP date, whole seconds from the
		// sandbox's clock, so the wait is about wait (within a second).
		dated bool
		text  string
	}{
		{name: "503 with Retry-After", faults: sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{503}, RetryAfter: sandbox.Duration(2 * time.Second)},
			class: failure.Throttled, reason: "http_503", wait: 2 * time.Second},
		{name: "503 with Retry-After as an HTTP date", faults: sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{503},
			RetryAfter: sandbox.Duration(5 * time.Second), RetryAfterDate: true},
			class: failure.Throttled, reason: "http_503", wait: 5 * time.Second, dated: true},
		{name: "token endpoint down, Retry-After as an HTTP date", faults: sandbox.Faults{TokenEndpointDown: true,
			RetryAfter: sandbox.Duration(5 * time.Second), RetryAfterDate: true},
			class: failure.Throttled, reason: "token_http_503", wait: 5 * time.Second, dated: true},
		{name: "500", faults: sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{500}}, class: failure.Transient, reason: "http_500", text: "injected fault"},
		{name: "502", faults: sandbox.Faults{ErrorRate: 1, ErrorStatuses: []int{502}}, class: failure.Transient, reason: "http_502"},
		{name: "wrong content type", faults: sandbox.Faults{ContentType: "text/html; charset=utf-8"},
			class: failure.Permanent, reason: "wrong_content_type", text: `"text/html; charset=utf-8"`},
		{name: "token endpoint down", faults: sandbox.Faults{TokenEndpointDown: true, RetryAfter: sandbox.Duration(4 * time.Second)},
			class: failure.Throttled, reason: "token_http_503", wait: 4 * time.Second},
		{name: "slow to answer", faults: sandbox.Faults{Latency: sandbox.Duration(3 * time.Second)},
			client: func(t *testing.T, base string) *Client {
				return demoClient(t, base, nil, func(c *Config) { c.ResponseHeaderTimeout = 100 * time.Millisecond })
			},
			class: failure.Transient, reason: "timeout"},
		{name: "no such path (404)", client: func(t *testing.T, base string) *Client {
			return demoClient(t, base, nil, func(c *Config) { c.ExportPath = "/api/external/lms/pifu-v9" })
		}, class: failure.Permanent, reason: "not_found", text: "404 Not Found"},
		{name: "scope missing from the token (403)", client: func(t *testing.T, base string) *Client {
			c, _ := newClient(t, base, sandbox.DemoNoScopeClientID, sandbox.DemoNoScopeClientSecret, nil, nil, nil)
			return c
		}, class: failure.Permanent, reason: "forbidden", text: "insufficient_scope"},
		{name: "scope not granted", client: func(t *testing.T, base string) *Client {
			c, _ := newClient(t, base, sandbox.DemoNoScopeClientID, sandbox.DemoNoScopeClientSecret, []string{sandbox.ScopeLMSExport}, nil, nil)
			return c
		}, class: failure.Permanent, reason: "invalid_scope"},
		{name: "wrong secret", client: func(t *testing.T, base string) *Client {
			c, _ := newClient(t, base, sandbox.DemoClientID, testSecret, nil, nil, nil)
			return c
		}, class: failure.Permanent, reason: "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb, base := startSandbox(t, nil)
			if err := sb.SetFaults(tenantTiny, tc.faults); err != nil {
				t.Fatal(err)
			}
			c := demoClient(t, base, nil, nil)
			if tc.client != nil {
				c = tc.client(t, base)
			}
			exp, err := c.FetchExport(context.Background(), "app", tenantTiny)
			if err == nil {
				exp.Body.Close()
				t.Fatal("no error")
			}
			if failure.ClassOf(err) != tc.class || failure.ReasonOf(err) != tc.reason {
				t.Errorf("got %s/%s, want %s/%s: %v", failure.ClassOf(err), failure.ReasonOf(err), tc.class, tc.reason, err)
			}
			wait, _ := failure.RetryAfter(err)
			// A date is honoured to the end of the second it names: up to two
			// seconds over the sandbox's wait (it rounds its date up too).
			if tc.dated && (wait < tc.wait-time.Second || wait > tc.wait+2*time.Second) || !tc.dated && wait != tc.wait {
				t.Errorf("wait %s, want %s", wait, tc.wait)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			for _, s := range []string{sandbox.DemoClientSecret, sandbox.DemoNoScopeClientSecret, testSecret} {
				for _, form := range []string{err.Error(), sprintf("%+v", err), sprintf("%#v", err)} {
					if strings.Contains(form, s) {
						t.Errorf("error shows a secret: %s", form)
					}
				}
			}
		})
	}
}

func TestSandboxTenantNotLinked(t *testing.T) {
	_, base := startSandbox(t, nil)
	_, err := demoClient(t, base, nil, nil).FetchExport(context.Background(), "app", "11111111-2222-3333-4444-555555555555")
	if !failure.IsPermanent(err) || failure.ReasonOf(err) != "invalid_tenant" {
		t.Fatalf("err = %v", err)
	}
}

func TestSandboxRateLimitAndQuotaAreThrottled(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 10, 23, 0, 0, 0, time.UTC)}
	_, base := startSandbox(t, func(c *sandbox.Config) {
		c.Now = clk.Now
		c.Applications[0].RateLimit = &sandbox.RateLimit{Rate: 0.1, Burst: 1}
		c.Applications[0].Quota = sandbox.Quota{Daily: 2}
	})
	c := demoClient(t, base, nil, nil)
	get := func() error {
		exp, err := c.FetchExport(context.Background(), "app", tenantTiny)
		if err == nil {
			wellFormed(t, exp.Body)
			exp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	err := get()
	wait, _ := failure.RetryAfter(err)
	if failure.ClassOf(err) != failure.Throttled || failure.ReasonOf(err) != "http_429" || wait < 9*time.Second || wait > 10*time.Second {
		t.Fatalf("rate limited: %v (wait %s)", err, wait)
	}
	clk.Add(10 * time.Second)
	if err := get(); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Second)
	err = get() // the daily quota of 2 is used up until midnight, about an hour away
	wait, _ = failure.RetryAfter(err)
	if failure.ClassOf(err) != failure.Throttled || !strings.Contains(err.Error(), "quota") || wait < 50*time.Minute || wait > 61*time.Minute {
		t.Fatalf("quota: %v (wait %s)", err, wait)
	}
}

func TestSandboxBodyCutOffMidwayIsTransient(t *testing.T) {
	sb, base := startSandbox(t, nil)
	if err := sb.SetFaults(tenantTiny, sandbox.Faults{CutOffAfter: 3000}); err != nil {
		t.Fatal(err)
	}
	exp, err := demoClient(t, base, nil, nil).FetchExport(context.Background(), "app", tenantTiny)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	n, err := io.Copy(io.Discard, exp.Body)
	if err == nil || failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTruncatedBody) {
		t.Fatalf("read %d bytes, err = %v", n, err)
	}
	if n > 3000 {
		t.Errorf("read %d bytes of a body cut after 3000", n)
	}
}

func TestSandboxSlowBodyIsNotCut(t *testing.T) {
	sb, base := startSandbox(t, nil)
	if err := sb.SetFaults(tenantTiny, sandbox.Faults{SlowBody: 200_000}); err != nil {
		t.Fatal(err)
	}
	exp, err := demoClient(t, base, nil, func(c *Config) { c.IdleTimeout = 2 * time.Second }).FetchExport(context.Background(), "app", tenantTiny)
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	wellFormed(t, exp.Body)
}

func TestSandboxNothingPrintedShowsACredential(t *testing.T) {
	sb, base := startSandbox(t, nil)
	if err := sb.SetFaults(tenantTiny, sandbox.Faults{CutOffAfter: 2000}); err != nil {
		t.Fatal(err)
	}
	c, src := newClient(t, base, sandbox.DemoClientID, sandbox.DemoClientSecret, nil, nil, nil)
	exp, err := c.FetchExport(context.Background(), "app", tenantTiny)
	if err != nil {
		t.Fatal(err)
	}
	_, readErr := io.Copy(io.Discard, exp.Body)
	exp.Body.Close()
	tok, _ := src.Token(context.Background(), auth.Key{App: "app", Tenant: tenantTiny})
	leaks := []string{tok.Access.Reveal(), sandbox.DemoClientSecret}
	for name, v := range map[string]any{"*Client": c, "*Export": exp, "Export": *exp, "read error": readErr} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			s := sprintf(verb, v)
			for _, l := range leaks {
				if strings.Contains(s, l) {
					t.Errorf("%s printed with %s shows a credential: %s", name, verb, s)
				}
			}
		}
	}
}
