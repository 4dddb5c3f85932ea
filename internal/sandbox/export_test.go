package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/skolebuss/skolebuss/internal/pifu/pifutest"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

func TestExportValidatesAgainstSchema(t *testing.T) {
	_, base := start(t, DemoConfig())
	tenants := []string{DemoTenantFjordvik, DemoTenantMaaneby}
	if !testing.Short() {
		tenants = append(tenants, DemoTenantNordstrand)
	}
	for _, id := range tenants {
		body := readExport(t, base, token(t, base, demoForm(id)))
		if msg := pifutest.SchemaErrors(t, body); msg != "" {
			t.Errorf("tenant %s: export does not validate:\n%s", id, msg)
		}
	}
}

func TestExportHeaders(t *testing.T) {
	cfg := oneTenant()
	dep := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	sun := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	cfg.Deprecation, cfg.Sunset, cfg.APIVersion = &dep, &sun, "1.4.2"
	_, base := start(t, cfg)
	resp := getExport(t, base, token(t, base, demoForm(DemoTenantFjordvik)))
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("Content-Type") != "application/xml; charset=utf-8" {
		t.Errorf("status %d, Content-Type %q", resp.StatusCode, h.Get("Content-Type"))
	}
	if h.Get("X-Api-Version") != "1.4.2" || h.Get("Deprecation") != "@1788220800" || h.Get("Sunset") != "Mon, 01 Mar 2027 00:00:00 GMT" {
		t.Errorf("X-Api-Version %q, Deprecation %q, Sunset %q", h.Get("X-Api-Version"), h.Get("Deprecation"), h.Get("Sunset"))
	}
	if resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("export not chunked: Content-Length %d, Transfer-Encoding %v", resp.ContentLength, resp.TransferEncoding)
	}
	// Refusals carry the version too.
	if r := getExport(t, base, ""); r.Header.Get("X-Api-Version") != "1.4.2" || r.Header.Get("Sunset") == "" {
		t.Errorf("401 without version headers: %v", r.Header)
	}
}

func TestExportRefusals(t *testing.T) {
	clk := newClock()
	cfg := DemoConfig()
	cfg.Now = clk.Now
	s, base := start(t, cfg)
	other, err := New(DemoConfig(), nil) // same config, another key
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	good := token(t, base, demoForm(DemoTenantFjordvik))
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	sig[5] ^= 0x01
	if sig[5] == '-' || sig[5] == '_' { // keep it base64url
		sig[5] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	claims := func(client, tenant string) *Claims {
		now := clk.Now()
		return &Claims{ClientID: client, TenantID: tenant, Scope: []string{ScopeLMSExport},
			RegisteredClaims: jwt.RegisteredClaims{Issuer: DefaultIssuer, NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	}
	foreign, _ := other.signer.sign(claims(DemoClientID, DemoTenantFjordvik))
	unlinked, _ := s.signer.sign(claims(DemoNoScopeClientID, DemoTenantMaaneby))
	wrongIssuer := claims(DemoClientID, DemoTenantFjordvik)
	wrongIssuer.Issuer = "https://evil.example"
	wrongIss, _ := s.signer.sign(wrongIssuer)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(DemoClientID, DemoTenantFjordvik)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	noScope := token(t, base, map[string][]string{
		"grant_type": {"client_credentials"}, "client_id": {DemoNoScopeClientID},
		"client_secret": {DemoNoScopeClientSecret}, "tenant_ID": {DemoTenantFjordvik},
	})
	expiring := token(t, base, demoForm(DemoTenantFjordvik))

	tests := []struct {
		name   string
		tok    string
		before func()
		status int
		code   string
	}{
		{"missing", "", nil, 401, "invalid_token"},
		{"garbage", "not-a-jwt", nil, 401, "invalid_token"},
		{"bad signature", tampered, nil, 401, "invalid_token"},
		{"foreign key", foreign, nil, 401, "invalid_token"},
		{"alg none", none, nil, 401, "invalid_token"},
		{"wrong issuer", wrongIss, nil, 401, "invalid_token"},
		{"tenant not linked", unlinked, nil, 401, "invalid_token"},
		{"no scope", noScope, nil, 403, "insufficient_scope"},
		{"expired", expiring, func() { clk.Add(time.Hour + time.Second) }, 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			resp := getExport(t, base, tt.tok)
			ch := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tt.status || !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="`+tt.code+`"`) {
				t.Errorf("got %d, WWW-Authenticate %q; want %d with error=%q", resp.StatusCode, ch, tt.status, tt.code)
			}
			if strings.Contains(ch, tt.tok) && tt.tok != "" {
				t.Error("the challenge echoes the token")
			}
		})
	}
	if st := s.StatsSnapshot().Applications[DemoClientID]; st.Served != 0 || st.Requests != 0 {
		t.Errorf("refused requests counted as served: %+v", st)
	}
}

func TestExportDeterministicAndChanges(t *testing.T) {
	s, base := start(t, DemoConfig())
	tok := token(t, base, demoForm(DemoTenantMaaneby))
	a := readExport(t, base, tok)
	b := readExport(t, base, tok)
	if !bytes.Equal(a, b) {
		t.Fatal("two exports of the same generation differ")
	}
	// Another server from the same config (another key, same seeds) serves
	// the same bytes: the export is a function of (seed, generation).
	_, base2 := start(t, DemoConfig())
	if c := readExport(t, base2, token(t, base2, demoForm(DemoTenantMaaneby))); !bytes.Equal(a, c) {
		t.Fatal("a second server serves other bytes for the same seed and generation")
	}

	gen, err := s.Advance(DemoTenantMaaneby)
	if err != nil || gen != 1 {
		t.Fatalf("Advance = %d, %v; want 1", gen, err)
	}
	resp := getExport(t, base, tok)
	if resp.Header.Get(HeaderGeneration) != "1" {
		t.Errorf("%s = %q after Advance", HeaderGeneration, resp.Header.Get(HeaderGeneration))
	}
	next := readExport(t, base, tok)
	if bytes.Equal(a, next) {
		t.Fatal("the next generation serves the same bytes")
	}
	if msg := pifutest.SchemaErrors(t, next); msg != "" {
		t.Errorf("generation 1 does not validate:\n%s", msg)
	}
	if _, err := s.Advance("00000000-0000-0000-0000-000000000000"); err == nil {
		t.Error("Advance of an unknown tenant succeeded")
	}
	// Other tenants keep their generation.
	if g, _ := s.Generation(DemoTenantFjordvik); g != 0 {
		t.Errorf("Fjordvik at generation %d", g)
	}
}

func TestGenerationTicker(t *testing.T) {
	cfg := oneTenant()
	cfg.GenerationInterval = Duration(20 * time.Millisecond)
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, _ := s.Generation(DemoTenantFjordvik)
		if g >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation still %d after 5s with a 20ms interval", g)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	g1, _ := s.Generation(DemoTenantFjordvik)
	time.Sleep(60 * time.Millisecond) // three intervals, in which the generation must not move
	if g2, _ := s.Generation(DemoTenantFjordvik); g2 != g1 {
		t.Errorf("generation moved from %d to %d after Close", g1, g2)
	}
}

// BenchmarkExport measures serving a whole export over real HTTP (generation,
// fault chain, chunked encoding, loopback) to a client that discards it.
func BenchmarkExport(b *testing.B) {
	cfg := DemoConfig()
	cfg.Applications[0].RateLimit, cfg.Applications[0].Quota = nil, Quota{}
	s, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tc := range []struct{ name, tenant string }{{"small", DemoTenantMaaneby}, {"medium", DemoTenantNordstrand}} {
		b.Run(tc.name, func(b *testing.B) {
			resp, err := http.PostForm(ts.URL+PathToken, demoForm(tc.tenant))
			if err != nil {
				b.Fatal(err)
			}
			var tr tokenResponse
			json.NewDecoder(resp.Body).Decode(&tr)
			resp.Body.Close()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, ts.URL+PathExport, nil)
				req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("export: %d %v", resp.StatusCode, err)
				}
				b.SetBytes(n)
			}
		})
	}
}

// TestServedExportIsTheGenerators checks that what the export endpoint
// serves at generation N is byte for byte the generator's document at
// (seed, N) with the tenant's configured churn; rostergen's tests check that
// each generation brings every kind of change, so this ties them to the
// answers over HTTP. It also checks that the configured churn is the one in
// force: another churn gives another next generation.
func TestServedExportIsTheGenerators(t *testing.T) {
	cfg := oneTenant()
	cfg.Tenants[0].Size = "small"
	cfg.Tenants[0].Churn = 0.2
	s, base := start(t, cfg)
	tok := token(t, base, demoForm(DemoTenantFjordvik))
	sz, err := rostergen.Preset("small")
	if err != nil {
		t.Fatal(err)
	}
	spec := rostergen.Spec{TenantID: DemoTenantFjordvik, Name: "Fjordvik kommune", Seed: 42, Sizes: sz, Churn: 0.2}
	gen := func(spec rostergen.Spec, n uint64) []byte {
		m, err := rostergen.New(spec)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := m.WriteExport(context.Background(), &b, n); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	if !bytes.Equal(readExport(t, base, tok), gen(spec, 0)) {
		t.Fatal("generation 0 served differs from the generator's (seed 42, generation 0)")
	}
	if _, err := s.Advance(DemoTenantFjordvik); err != nil {
		t.Fatal(err)
	}
	served := readExport(t, base, tok)
	if !bytes.Equal(served, gen(spec, 1)) {
		t.Fatal("generation 1 served differs from the generator's (seed 42, generation 1)")
	}
	spec.Churn = 0
	if bytes.Equal(served, gen(spec, 1)) {
		t.Fatal("generation 1 at churn 0.2 equals generation 1 at the default churn: the configured churn is not in force")
	}
}

// TestExportIsStreamed reads the first MiB of a large municipality's export
// (about 270 MB) over HTTP and checks that the answer began before the
// document was built: the process allocated far less than the document's
// size by then. An export built whole in memory fails it.
func TestExportIsStreamed(t *testing.T) {
	cfg := oneTenant()
	cfg.Tenants[0].Size = "large"
	_, base := start(t, cfg)
	tok := token(t, base, demoForm(DemoTenantFjordvik))

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := getExport(t, base, tok)
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("status %d, Content-Length %d; want 200 without a length", resp.StatusCode, resp.ContentLength)
	}
	n, err := io.CopyN(io.Discard, resp.Body, 1<<20)
	runtime.ReadMemStats(&after)
	resp.Body.Close()
	if err != nil || n != 1<<20 {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("%d MiB allocated before the first MiB of the export arrived; want a streamed export", alloc>>20)
	}
}
