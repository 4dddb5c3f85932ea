package sandbox

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestVersionHeadersOnEveryAnswer checks X-Api-Version, Deprecation and
// Sunset on every kind of answer the sandbox gives: token success, token
// errors and the token endpoint down, the export, each refusal, 429, an
// injected 5xx, a wrong method, the JWKS and an admin call.
func TestVersionHeadersOnEveryAnswer(t *testing.T) {
	cfg := DemoConfig()
	dep := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	sun := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	cfg.Deprecation, cfg.Sunset, cfg.APIVersion = &dep, &sun, "9.8.7"
	cfg.Applications[0].RateLimit = nil
	cfg.Applications = append(cfg.Applications, Application{ClientID: "limited", ClientSecret: "limited-secret",
		Scopes: []string{ScopeLMSExport}, Tenants: []string{DemoTenantFjordvik}, RateLimit: &RateLimit{Rate: 0.001, Burst: 1}})
	cfg.Tenants[1].Faults = Faults{ErrorRate: 1, ErrorStatuses: []int{503}}
	cfg.Tenants[2].Faults = Faults{TokenEndpointDown: true}
	_, base := start(t, cfg)

	check := func(what string, resp *http.Response, status int) {
		t.Helper()
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
		}
		if h.Get("X-Api-Version") != "9.8.7" || h.Get("Deprecation") != "@1788220800" || h.Get("Sunset") != "Mon, 01 Mar 2027 00:00:00 GMT" {
			t.Errorf("%s: X-Api-Version %q, Deprecation %q, Sunset %q", what, h.Get("X-Api-Version"), h.Get("Deprecation"), h.Get("Sunset"))
		}
	}
	postForm := func(form map[string][]string) *http.Response {
		resp, err := http.PostForm(base+PathToken, form)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	get := func(path, tok string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	check("token 200", postForm(demoForm(DemoTenantFjordvik)), 200)
	bad := demoForm(DemoTenantFjordvik)
	bad.Set("client_secret", "nope")
	check("token invalid_client", postForm(bad), 401)
	bad = demoForm(DemoTenantFjordvik)
	bad.Del("grant_type")
	check("token invalid_request", postForm(bad), 400)
	check("token endpoint down", postForm(demoForm(DemoTenantNordstrand)), 503)
	resp, err := http.Get(base + PathToken)
	if err != nil {
		t.Fatal(err)
	}
	check("token GET", resp, 405)

	limited := demoForm(DemoTenantFjordvik)
	limited.Set("client_id", "limited")
	limited.Set("client_secret", "limited-secret")
	tok := token(t, base, limited)
	check("export 200", get(PathExport, tok), 200)
	check("export 429", get(PathExport, tok), 429)
	check("export 401", get(PathExport, ""), 401)
	noScope := token(t, base, map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {DemoNoScopeClientID},
		"client_secret": {DemoNoScopeClientSecret}, "tenant_ID": {DemoTenantFjordvik},
	})
	check("export 403", get(PathExport, noScope), 403)
	check("export injected 503", get(PathExport, token(t, base, demoForm(DemoTenantMaaneby))), 503)
	check("JWKS", get(PathJWKS, ""), 200)
	check("discovery", get(PathDiscovery, ""), 200)
	check("admin stats", get("/_sandbox/stats", ""), 200)
	check("unknown admin call", get("/_sandbox/nothing", ""), 404)
	req, _ := http.NewRequest(http.MethodPost, base+PathExport, strings.NewReader(""))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	check("export POST", resp, 405)
}

// TestNoDeprecationUnlessConfigured checks that Deprecation and Sunset are
// sent only when configured, while X-Api-Version always is.
func TestNoDeprecationUnlessConfigured(t *testing.T) {
	_, base := start(t, oneTenant())
	r := postToken(t, base, demoForm(DemoTenantFjordvik), nil)
	resp := getExport(t, base, r.AccessToken)
	io.Copy(io.Discard, resp.Body)
	for what, h := range map[string]http.Header{"token": r.Header, "export": resp.Header} {
		if h.Get("X-Api-Version") != DefaultAPIVersion || h.Get("Deprecation") != "" || h.Get("Sunset") != "" {
			t.Errorf("%s: X-Api-Version %q, Deprecation %q, Sunset %q; want the default version only",
				what, h.Get("X-Api-Version"), h.Get("Deprecation"), h.Get("Sunset"))
		}
	}
}
