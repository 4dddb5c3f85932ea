package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// A token endpoint answering for another tenant (the sandbox's token_tenant
// fault) gives a signed token the API would accept: it is refused as a
// Permanent token_wrong_tenant, not cached, and neither the error nor the
// log shows the token. The tenant's own token is still handed out.
func TestSandboxTokenForAnotherTenantIsRefused(t *testing.T) {
	sb, base := startSandbox(t, nil)
	if err := sb.SetFaults(tenantTiny, sandbox.Faults{TokenTenant: tenantSmall}); err != nil {
		t.Fatal(err)
	}
	var log logCapture
	s := demoSource(t, base, nil, &log, nil)
	for range 2 { // the second asks again: nothing was cached
		_, err := s.Token(context.Background(), Key{"demo", tenantTiny})
		if failure.ClassOf(err) != failure.Permanent || !failure.HasReason(err, failure.ReasonTokenWrongTenant) {
			t.Fatalf("token for another tenant: %s/%s (%v)", failure.ClassOf(err), failure.ReasonOf(err), err)
		}
		if !strings.Contains(err.Error(), tenantSmall) {
			t.Errorf("the error does not name the tenant the token is for: %v", err)
		}
	}
	if n := issued(sb, sandbox.DemoClientID); n != 2 {
		t.Errorf("%d tokens issued, want 2 (a refused token is not cached)", n)
	}
	if _, err := s.Token(context.Background(), Key{"demo", tenantSmall}); err != nil {
		t.Errorf("the other tenant's own token: %v", err)
	}
	if !strings.Contains(log.b.String(), "token_wrong_tenant") || strings.Contains(log.b.String(), "eyJ") {
		t.Errorf("the log lacks the refusal or shows a token:\n%s", log.b.String())
	}
}

// jwtShaped is a token of three base64url parts whose middle one is claims.
func jwtShaped(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc(b) + "." + enc([]byte("signature"))
}

// Which tokens pass the tenant check, served by a token endpoint over real
// HTTP: an opaque token, a JWT without a tenant claim and one naming the
// tenant (in either case of the claim's name and of the id) pass; a JWT
// naming another tenant, or with a tenant claim that is no string, does not.
func TestTenantClaimChecked(t *testing.T) {
	const tenant = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	var access atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": access.Load(), "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	cases := []struct {
		name, token string
		ok          bool
	}{
		{"opaque", "8f14e45fceea167a5a36dedd4bea2543", true},
		{"opaque with dots", "a.b", true},
		{"three parts, not JSON", "abc.def.ghi", true},
		{"JWT without a tenant claim", jwtShaped(map[string]any{"sub": "x"}), true},
		{"JWT tenant_id", jwtShaped(map[string]any{"tenant_id": tenant}), true},
		{"JWT tenant_ID upper-case id", jwtShaped(map[string]any{"tenant_ID": strings.ToUpper(tenant)}), true},
		{"JWT another tenant", jwtShaped(map[string]any{"tenant_ID": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}), false},
		{"JWT tenant claim a number", jwtShaped(map[string]any{"tenant_id": 42}), false},
		{"JWT empty tenant claim", jwtShaped(map[string]any{"tenant_id": ""}), false},
	}
	for _, c := range cases {
		access.Store(c.token)
		s := newSource(t, srv.URL, nil, nil, nil)
		tok, err := s.Token(context.Background(), Key{"app", tenant})
		switch {
		case c.ok && (err != nil || tok.Access.Reveal() != c.token):
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.ok && !failure.HasReason(err, failure.ReasonTokenWrongTenant):
			t.Errorf("%s: %v, want %s", c.name, err, failure.ReasonTokenWrongTenant)
		case !c.ok && strings.Contains(err.Error(), c.token):
			t.Errorf("%s: the error shows the token: %v", c.name, err)
		}
	}
}
