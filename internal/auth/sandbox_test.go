package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// These tests run against the sandbox upstream over real HTTP.

const (
	tenantTiny  = sandbox.DemoTenantFjordvik
	tenantSmall = sandbox.DemoTenantMaaneby
)

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

func issued(s *sandbox.Server, clientID string) int64 {
	return s.StatsSnapshot().Applications[clientID].TokensIssued
}

// demoSource is a Source with the sandbox's demo application as "demo" and
// its scope-less application as "noscope".
func demoSource(t *testing.T, base string, rt http.RoundTripper, log *logCapture, mod func(*Config)) *Source {
	return newSource(t, base+"/connect/token", rt, log, func(c *Config) {
		c.Applications = []Application{
			{Name: "demo", ClientID: sandbox.DemoClientID, ClientSecret: sandbox.DemoClientSecret, Scopes: []string{sandbox.ScopeLMSExport}},
			{Name: "noscope", ClientID: sandbox.DemoNoScopeClientID, ClientSecret: sandbox.DemoNoScopeClientSecret, Scopes: []string{sandbox.ScopeLMSExport}},
			{Name: "wrong", ClientID: sandbox.DemoClientID, ClientSecret: testSecret},
		}
		if mod != nil {
			mod(c)
		}
	})
}

func TestSandboxTokenIsCachedPerKey(t *testing.T) {
	sb, base := startSandbox(t, nil)
	rt := newCounting()
	var log logCapture
	s := demoSource(t, base, rt, &log, nil)
	ctx := context.Background()
	a, err := s.Token(ctx, Key{"demo", tenantTiny})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Token(ctx, Key{"demo", tenantTiny})
	if err != nil {
		t.Fatal(err)
	}
	if a.Access != b.Access || issued(sb, sandbox.DemoClientID) != 1 || rt.n.Load() != 1 {
		t.Fatalf("two calls: same token %v, tokens issued %d, requests %d; want one", a.Access == b.Access, issued(sb, sandbox.DemoClientID), rt.n.Load())
	}
	if a.Type != "Bearer" || time.Until(a.Expiry) < 59*time.Minute {
		t.Errorf("token type %q, expires in %s", a.Type, time.Until(a.Expiry))
	}
	c, err := s.Token(ctx, Key{"demo", tenantSmall})
	if err != nil || c.Access == a.Access || issued(sb, sandbox.DemoClientID) != 2 {
		t.Fatalf("another tenant: err %v, issued %d", err, issued(sb, sandbox.DemoClientID))
	}
	for _, leak := range []string{a.Access.Reveal(), c.Access.Reveal(), sandbox.DemoClientSecret} {
		if strings.Contains(log.b.String(), leak) {
			t.Errorf("the log shows a credential:\n%s", log.b.String())
		}
	}
}

// slowCounting delays each token request so that concurrent callers
// really overlap it.
type slowCounting struct{ *countingTransport }

func (s slowCounting) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(100 * time.Millisecond)
	return s.countingTransport.RoundTrip(r)
}

func TestSandboxFiftyConcurrentCallersCauseOneRequest(t *testing.T) {
	sb, base := startSandbox(t, nil)
	rt := newCounting()
	s := demoSource(t, base, slowCounting{rt}, nil, nil)
	var wg sync.WaitGroup
	start := make(chan struct{})
	toks := make([]Token, 50)
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = s.Token(context.Background(), Key{"demo", tenantTiny})
		})
	}
	close(start)
	wg.Wait()
	for i := range 50 {
		if errs[i] != nil || toks[i].Access != toks[0].Access {
			t.Fatalf("caller %d: err %v, same token %v", i, errs[i], toks[i].Access == toks[0].Access)
		}
	}
	if n, m := rt.n.Load(), issued(sb, sandbox.DemoClientID); n != 1 || m != 1 {
		t.Fatalf("50 concurrent callers made %d token requests (sandbox issued %d), want 1", n, m)
	}
}

func TestSandboxRenewsBeforeExpiry(t *testing.T) {
	sb, base := startSandbox(t, func(c *sandbox.Config) { c.TokenLifetime = sandbox.Duration(2 * time.Second) })
	s := demoSource(t, base, nil, nil, nil) // RenewBefore 60s > half of 2s: renewed after 1s
	first, err := s.Token(context.Background(), Key{"demo", tenantTiny})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Token(context.Background(), Key{"demo", tenantTiny}); again.Access != first.Access {
		t.Fatal("the fresh token was not reused")
	}
	var renewed Token
	poll(t, "renewal", func() bool {
		renewed, err = s.Token(context.Background(), Key{"demo", tenantTiny})
		return err == nil && renewed.Access != first.Access
	})
	if !time.Now().Before(first.Expiry) {
		t.Errorf("renewed only after the old token expired (%s)", first.Expiry)
	}
	if n := issued(sb, sandbox.DemoClientID); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

// The x/oauth2 trap: a token source keeps the context it was built with. A
// caller whose context is cancelled after its call must not break the
// renewals that come later.
func TestSandboxCancelledCallerContextDoesNotBreakLaterRenewals(t *testing.T) {
	sb, base := startSandbox(t, func(c *sandbox.Config) { c.TokenLifetime = sandbox.Duration(2 * time.Second) })
	s := demoSource(t, base, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	first, err := s.Token(ctx, Key{"demo", tenantTiny})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "renewal after the first caller's context was cancelled", func() bool {
		tok, err := s.Token(context.Background(), Key{"demo", tenantTiny})
		if err != nil {
			t.Fatalf("renewal failed: %v", err)
		}
		return tok.Access != first.Access
	})
	if n := issued(sb, sandbox.DemoClientID); n != 2 {
		t.Errorf("tokens issued = %d, want 2", n)
	}
}

func TestSandboxInvalidateDropsOnlyTheRejectedToken(t *testing.T) {
	sb, base := startSandbox(t, nil)
	s := demoSource(t, base, nil, nil, nil)
	key := Key{"demo", tenantTiny}
	old, _ := s.Token(context.Background(), key)
	s.Invalidate(key, old)
	fresh, err := s.Token(context.Background(), key)
	if err != nil || fresh.Access == old.Access || issued(sb, sandbox.DemoClientID) != 2 {
		t.Fatalf("after Invalidate: err %v, new token %v, issued %d", err, fresh.Access != old.Access, issued(sb, sandbox.DemoClientID))
	}
	s.Invalidate(key, old) // a second caller that also saw the old one rejected
	if again, _ := s.Token(context.Background(), key); again.Access != fresh.Access || issued(sb, sandbox.DemoClientID) != 2 {
		t.Errorf("a stale Invalidate dropped the fresh token")
	}
}

func TestSandboxRefusalsAreClassified(t *testing.T) {
	sb, base := startSandbox(t, nil)
	var log logCapture
	s := demoSource(t, base, nil, &log, nil)
	cases := []struct {
		name   string
		key    Key
		class  failure.Class
		reason string
	}{
		{"wrong secret", Key{"wrong", tenantTiny}, failure.Permanent, "invalid_client"},
		{"scope not granted", Key{"noscope", tenantTiny}, failure.Permanent, "invalid_scope"},
		{"tenant not linked", Key{"demo", "11111111-2222-3333-4444-555555555555"}, failure.Permanent, "invalid_tenant"},
	}
	for _, tc := range cases {
		_, err := s.Token(context.Background(), tc.key)
		if failure.ClassOf(err) != tc.class || failure.ReasonOf(err) != tc.reason {
			t.Errorf("%s: got %s/%s (%v), want %s/%s", tc.name, failure.ClassOf(err), failure.ReasonOf(err), err, tc.class, tc.reason)
		}
		assertHidden(t, tc.name+" error", err, testSecret, sandbox.DemoClientSecret, sandbox.DemoNoScopeClientSecret)
	}

	if err := sb.SetFaults(tenantSmall, sandbox.Faults{TokenEndpointDown: true, RetryAfter: sandbox.Duration(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Token(context.Background(), Key{"demo", tenantSmall})
	wait, _ := failure.RetryAfter(err)
	if failure.ClassOf(err) != failure.Throttled || failure.ReasonOf(err) != "token_http_503" || wait != 3*time.Second {
		t.Errorf("token endpoint down: got %s/%s wait %s (%v)", failure.ClassOf(err), failure.ReasonOf(err), wait, err)
	}
	assertHidden(t, "endpoint down error", err, sandbox.DemoClientSecret)
	for _, leak := range []string{testSecret, sandbox.DemoClientSecret, sandbox.DemoNoScopeClientSecret} {
		if strings.Contains(log.b.String(), leak) {
			t.Errorf("the log shows a secret:\n%s", log.b.String())
		}
	}
}

// Everything the package hands out, printed every way, shows no secret and
// no token, also after tokens are cached.
func TestSandboxNothingPrintedShowsACredential(t *testing.T) {
	_, base := startSandbox(t, nil)
	s := demoSource(t, base, nil, nil, nil)
	tok, err := s.Token(context.Background(), Key{"demo", tenantTiny})
	if err != nil {
		t.Fatal(err)
	}
	_, failErr := s.Token(context.Background(), Key{"wrong", tenantTiny})
	leaks := []string{tok.Access.Reveal(), sandbox.DemoClientSecret, testSecret}
	assertHidden(t, "*Source", s, leaks...)
	assertHidden(t, "Token", tok, leaks...)
	assertHidden(t, "error", failErr, leaks...)
	if !strings.Contains(fmt.Sprint(s), "cached tokens: 1") {
		t.Errorf("Source prints as %v", s)
	}
}

// A renewal that fails while the current token is still valid does not fail
// the caller: the current token serves until shortly before it expires (a
// token endpoint that is down for a moment costs no export). Once it is
// about to expire, or once the API rejected it, the renewal's error comes
// through.
func TestSandboxFailedRenewalKeepsTheCurrentTokenUntilExpiry(t *testing.T) {
	sb, base := startSandbox(t, func(c *sandbox.Config) { c.TokenLifetime = sandbox.Duration(4 * time.Second) })
	rt := newCounting()
	s := demoSource(t, base, rt, nil, nil) // renewal due after 2s, fallback until 1s before expiry
	keep, drop := Key{"demo", tenantTiny}, Key{"demo", tenantSmall}
	first, err := s.Token(context.Background(), keep)
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := s.Token(context.Background(), drop)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{keep, drop} {
		if err := sb.SetFaults(k.Tenant, sandbox.Faults{TokenEndpointDown: true, RetryAfter: sandbox.Duration(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	renewAt := s.cache[keep].renewAt
	s.mu.Unlock()
	time.Sleep(time.Until(renewAt) + 50*time.Millisecond)
	tok, err := s.Token(context.Background(), keep)
	if err != nil || tok.Access != first.Access {
		t.Fatalf("during a failed renewal: err %v, same token %v; want the current token", err, tok.Access == first.Access)
	}
	if n := rt.n.Load(); n != 3 {
		t.Errorf("token requests = %d, want 3 (the renewal was tried)", n)
	}
	s.Invalidate(drop, rejected)
	if _, err := s.Token(context.Background(), drop); failure.ClassOf(err) != failure.Throttled {
		t.Errorf("a rejected token was handed out while renewal failed: err %v", err)
	}
	time.Sleep(time.Until(first.Expiry) - 900*time.Millisecond)
	_, err = s.Token(context.Background(), keep)
	if failure.ClassOf(err) != failure.Throttled || failure.ReasonOf(err) != "token_http_503" {
		t.Fatalf("close to expiry: err %v (%s/%s), want the renewal's throttled error", err, failure.ClassOf(err), failure.ReasonOf(err))
	}
}
