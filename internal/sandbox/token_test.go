package sandbox

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestTokenErrors(t *testing.T) {
	_, base := start(t, DemoConfig())
	with := func(mod func(url.Values)) url.Values {
		f := demoForm(DemoTenantFjordvik)
		mod(f)
		return f
	}
	tests := []struct {
		name   string
		form   url.Values
		basic  []string
		status int
		code   string
	}{
		{"missing grant_type", with(func(f url.Values) { f.Del("grant_type") }), nil, 400, "invalid_request"},
		{"missing client_id", with(func(f url.Values) { f.Del("client_id") }), nil, 400, "invalid_request"},
		{"missing client_secret", with(func(f url.Values) { f.Del("client_secret") }), nil, 400, "invalid_request"},
		{"missing tenant_ID", with(func(f url.Values) { f.Del("tenant_ID") }), nil, 400, "invalid_request"},
		{"repeated client_id", with(func(f url.Values) { f.Add("client_id", DemoClientID) }), nil, 400, "invalid_request"},
		{"repeated scope", with(func(f url.Values) { f.Add("scope", ScopeLMSExport) }), nil, 400, "invalid_request"},
		{"tenant_ID and tenant_id", with(func(f url.Values) { f.Set("tenant_id", DemoTenantFjordvik) }), nil, 400, "invalid_request"},
		{"basic and form secret", with(func(f url.Values) {}), []string{DemoClientID, DemoClientSecret}, 400, "invalid_request"},
		{"password grant", with(func(f url.Values) { f.Set("grant_type", "password") }), nil, 400, "unsupported_grant_type"},
		{"wrong secret", with(func(f url.Values) { f.Set("client_secret", "nope") }), nil, 401, "invalid_client"},
		{"unknown client", with(func(f url.Values) { f.Set("client_id", "someone-else") }), nil, 401, "invalid_client"},
		{"wrong basic secret", with(func(f url.Values) { f.Del("client_id"); f.Del("client_secret") }), []string{DemoClientID, "nope"}, 401, "invalid_client"},
		{"scope not granted", with(func(f url.Values) {
			f.Set("client_id", DemoNoScopeClientID)
			f.Set("client_secret", DemoNoScopeClientSecret)
		}), nil, 400, "invalid_scope"},
		{"unknown scope", with(func(f url.Values) { f.Set("scope", ScopeLMSExport+" vfsapi:everything") }), nil, 400, "invalid_scope"},
		{"tenant not linked", with(func(f url.Values) {
			f.Set("client_id", DemoNoScopeClientID)
			f.Set("client_secret", DemoNoScopeClientSecret)
			f.Del("scope")
			f.Set("tenant_ID", DemoTenantMaaneby)
		}), nil, 400, "invalid_tenant"},
		{"unknown tenant", with(func(f url.Values) { f.Set("tenant_ID", "00000000-0000-0000-0000-000000000000") }), nil, 400, "invalid_tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postToken(t, base, tt.form, tt.basic)
			if r.Status != tt.status || r.Error != tt.code {
				t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.Error, r.Description, tt.status, tt.code)
			}
			if r.AccessToken != "" {
				t.Error("an error answer carries a token")
			}
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Api-Version") == "" {
				t.Errorf("headers: Cache-Control %q, X-Api-Version %q", r.Header.Get("Cache-Control"), r.Header.Get("X-Api-Version"))
			}
			if tt.basic != nil && tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 to Basic auth without a Basic challenge: %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("not a form", func(t *testing.T) {
		resp, err := http.Post(base+PathToken, "application/json", strings.NewReader(`{"grant_type":"client_credentials"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		if resp.StatusCode != 400 || e.Error != "invalid_request" {
			t.Errorf("got %d %q, want 400 invalid_request", resp.StatusCode, e.Error)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(base + PathToken)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET token: %d, want 405", resp.StatusCode)
		}
	})
}

// jwksKey reads the published JWKS and returns its one key and kid.
func jwksKey(t *testing.T, base string) (*ecdsa.PublicKey, string) {
	t.Helper()
	resp, err := http.Get(base + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys", len(set.Keys))
	}
	k := set.Keys[0]
	if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["kid"] == "" {
		t.Fatalf("JWKS key %v", k)
	}
	x, _ := base64.RawURLEncoding.DecodeString(k["x"])
	y, _ := base64.RawURLEncoding.DecodeString(k["y"])
	raw := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return pub, k["kid"]
}

func TestTokenClaimsVerifyWithJWKS(t *testing.T) {
	clk := newClock()
	cfg := DemoConfig()
	cfg.Now = clk.Now
	_, base := start(t, cfg)
	pub, kid := jwksKey(t, base)

	r := postToken(t, base, demoForm(DemoTenantMaaneby), nil)
	if r.Status != 200 || r.TokenType != "Bearer" || r.ExpiresIn != 3600 || r.Scope != ScopeLMSExport {
		t.Fatalf("token answer %+v", r)
	}
	var c Claims
	tok, err := jwt.ParseWithClaims(r.AccessToken, &c, func(tk *jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(clk.Now), jwt.WithIssuer(DefaultIssuer), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("token does not verify with the JWKS key: %v", err)
	}
	if tok.Header["kid"] != kid {
		t.Errorf("kid %v, JWKS kid %s", tok.Header["kid"], kid)
	}
	if c.ClientID != DemoClientID || c.TenantID != DemoTenantMaaneby || len(c.Scope) != 1 || c.Scope[0] != ScopeLMSExport {
		t.Errorf("claims %+v", c)
	}
	if !c.NotBefore.Time.Equal(clk.Now()) || c.ExpiresAt.Sub(c.NotBefore.Time) != time.Hour || c.ID == "" {
		t.Errorf("nbf %v exp %v jti %q", c.NotBefore, c.ExpiresAt, c.ID)
	}

	r2 := postToken(t, base, demoForm(DemoTenantMaaneby), nil)
	var c2 Claims
	if _, _, err := jwt.NewParser().ParseUnverified(r2.AccessToken, &c2); err != nil || c2.ID == c.ID {
		t.Errorf("second token's jti %q equals the first's (%v)", c2.ID, err)
	}

	// Discovery points at the JWKS and the token endpoint.
	resp, err := http.Get(base + PathDiscovery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	json.NewDecoder(resp.Body).Decode(&d)
	if d["jwks_uri"] != base+PathJWKS || d["token_endpoint"] != base+PathToken || d["issuer"] != DefaultIssuer {
		t.Errorf("discovery %v", d)
	}
}

// TestTokenWithOAuth2Client gets tokens the way golang.org/x/oauth2 does,
// with HTTP Basic and with form parameters, spelling the tenant tenant_id.
func TestTokenWithOAuth2Client(t *testing.T) {
	_, base := start(t, DemoConfig())
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		cc := clientcredentials.Config{
			ClientID: DemoClientID, ClientSecret: DemoClientSecret, TokenURL: base + PathToken,
			Scopes: []string{ScopeLMSExport}, AuthStyle: style,
			EndpointParams: url.Values{"tenant_id": {DemoTenantFjordvik}},
		}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if body := readExport(t, base, tok.AccessToken); len(body) == 0 {
			t.Errorf("auth style %d: empty export", style)
		}
	}
}
