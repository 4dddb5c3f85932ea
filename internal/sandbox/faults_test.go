package sandbox

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/skolebuss/skolebuss/internal/pifu/pifutest"
)

// withFaults is oneTenant with the tenant's faults set.
func withFaults(f Faults) Config {
	cfg := oneTenant()
	cfg.Tenants[0].Faults = f
	return cfg
}

// statusRun makes n export calls and returns their statuses in order.
func statusRun(t *testing.T, cfg Config, n int) []int {
	t.Helper()
	_, base := start(t, cfg)
	tok := token(t, base, demoForm(DemoTenantFjordvik))
	out := make([]int, n)
	for i := range out {
		resp := getExport(t, base, tok)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out[i] = resp.StatusCode
		if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "3" {
			t.Errorf("503 with Retry-After %q, want 3", resp.Header.Get("Retry-After"))
		}
	}
	return out
}

func TestFaultErrorShare(t *testing.T) {
	cfg := withFaults(Faults{ErrorRate: 0.4, RetryAfter: Duration(3 * time.Second)})
	got := statusRun(t, cfg, 150)
	count := map[int]int{}
	for _, st := range got {
		count[st]++
	}
	failed := count[500] + count[502] + count[503]
	if failed < 40 || failed > 80 || count[200]+failed != 150 {
		t.Errorf("statuses %v: %d of 150 failed, want about 60 (a share of 0.4)", count, failed)
	}
	for _, st := range []int{500, 502, 503} {
		if count[st] == 0 {
			t.Errorf("no %d among %v", st, count)
		}
	}
	// The same fault seed fails the same requests.
	if again := statusRun(t, cfg, 150); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Error("the same fault_seed gave another sequence of statuses")
	}
	cfg.FaultSeed = 99
	if other := statusRun(t, cfg, 150); fmt.Sprint(other) == fmt.Sprint(got) {
		t.Error("another fault_seed gave the same sequence")
	}

	all := statusRun(t, withFaults(Faults{ErrorRate: 1, ErrorStatuses: []int{502}}), 5)
	if fmt.Sprint(all) != "[502 502 502 502 502]" {
		t.Errorf("error_rate 1 with 502 only: %v", all)
	}
}

func TestFaultLatency(t *testing.T) {
	_, base := start(t, withFaults(Faults{Latency: Duration(300 * time.Millisecond)}))
	tok := token(t, base, demoForm(DemoTenantFjordvik))
	t0 := time.Now()
	resp := getExport(t, base, tok)
	if d := time.Since(t0); resp.StatusCode != 200 || d < 300*time.Millisecond {
		t.Errorf("answer %d after %s; want 200 after at least 300ms", resp.StatusCode, d)
	}
}

func TestFaultSlowBody(t *testing.T) {
	_, plainBase := start(t, oneTenant())
	want := readExport(t, plainBase, token(t, plainBase, demoForm(DemoTenantFjordvik)))

	bps := len(want) * 2 // the whole body in about half a second
	_, base := start(t, withFaults(Faults{SlowBody: bps}))
	tok := token(t, base, demoForm(DemoTenantFjordvik))
	t0 := time.Now()
	got := readExport(t, base, tok)
	d := time.Since(t0)
	if !bytes.Equal(got, want) {
		t.Error("a slow body differs from the plain one")
	}
	if d < 400*time.Millisecond {
		t.Errorf("%d bytes at %d B/s took %s; want about 500ms", len(got), bps, d)
	}
}

func TestFaultCutOffIsUnexpectedEOF(t *testing.T) {
	s, base := start(t, withFaults(Faults{CutOffAfter: 1000}))
	resp := getExport(t, base, token(t, base, demoForm(DemoTenantFjordvik)))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a cut-off body: err %v, want io.ErrUnexpectedEOF", err)
	}
	if len(body) != 1000 {
		t.Errorf("got %d bytes before the cut, want 1000", len(body))
	}
	if st := s.StatsSnapshot().Applications[DemoClientID]; st.Faulted != 1 {
		t.Errorf("faulted = %d, want 1", st.Faulted)
	}
}

func TestFaultMalformedXML(t *testing.T) {
	_, base := start(t, withFaults(Faults{MalformedAfter: 700}))
	body := readExport(t, base, token(t, base, demoForm(DemoTenantFjordvik)))
	if msg := pifutest.SchemaErrors(t, body); msg == "" {
		t.Error("xmllint accepted the malformed export")
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var err error
	for err == nil {
		_, err = dec.Token()
	}
	if err == io.EOF {
		t.Error("encoding/xml read the malformed export to its end")
	}
}

func TestFaultContentType(t *testing.T) {
	_, base := start(t, withFaults(Faults{ContentType: "text/html; charset=utf-8"}))
	resp := getExport(t, base, token(t, base, demoForm(DemoTenantFjordvik)))
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/html; charset=utf-8" {
		t.Errorf("status %d Content-Type %q", resp.StatusCode, ct)
	}
}

func TestFaultTokenEndpointDown(t *testing.T) {
	cfg := DemoConfig()
	cfg.Tenants[0].Faults = Faults{TokenEndpointDown: true, RetryAfter: Duration(5 * time.Second)}
	s, base := start(t, cfg)
	r := postToken(t, base, demoForm(DemoTenantFjordvik), nil)
	if r.Status != 503 || r.Error != "temporarily_unavailable" || r.Header.Get("Retry-After") != "5" {
		t.Errorf("token endpoint down for Fjordvik: %d %q Retry-After %q", r.Status, r.Error, r.Header.Get("Retry-After"))
	}
	if r := postToken(t, base, demoForm(DemoTenantMaaneby), nil); r.Status != 200 {
		t.Errorf("Måneby, without the fault: %d %s", r.Status, r.Error)
	}
	if err := s.SetFaults("", Faults{TokenEndpointDown: true}); err != nil {
		t.Fatal(err)
	}
	if r := postToken(t, base, demoForm(DemoTenantMaaneby), nil); r.Status != 503 || r.Header.Get("Retry-After") != "1" {
		t.Errorf("globally down: %d Retry-After %q", r.Status, r.Header.Get("Retry-After"))
	}
}

func TestFaultTokensExpireEarly(t *testing.T) {
	clk := newClock()
	cfg := withFaults(Faults{TokenLifetime: Duration(2 * time.Second)})
	cfg.Now = clk.Now
	_, base := start(t, cfg)
	r := postToken(t, base, demoForm(DemoTenantFjordvik), nil)
	if r.Status != 200 || r.ExpiresIn != 3600 {
		t.Fatalf("token answer %d expires_in %d; want 200 announcing 3600", r.Status, r.ExpiresIn)
	}
	var c Claims
	if _, _, err := jwt.NewParser().ParseUnverified(r.AccessToken, &c); err != nil {
		t.Fatal(err)
	}
	if got := c.ExpiresAt.Sub(clk.Now()); got != 2*time.Second {
		t.Errorf("exp is %s after issue, want 2s", got)
	}
	if st, _ := exportStatus(t, base, r.AccessToken); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	clk.Add(3 * time.Second)
	if st, _ := exportStatus(t, base, r.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("3s later: %d, want 401 (the token expired early)", st)
	}
}

// TestFaultsSetThroughAdminAct sets faults at run time with the admin calls
// over HTTP and checks that the export answers change at once: a tenant's
// 503 with Retry-After, a global wrong content type on every tenant, and
// both gone after DELETE.
func TestFaultsSetThroughAdminAct(t *testing.T) {
	_, base := start(t, DemoConfig())
	admin := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	fjordvik := token(t, base, demoForm(DemoTenantFjordvik))
	maaneby := token(t, base, demoForm(DemoTenantMaaneby))
	answer := func(tok string) (int, string, string) {
		resp := getExport(t, base, tok)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")
	}

	admin("PUT", "/_sandbox/faults/"+DemoTenantFjordvik, `{"error_rate":1,"error_statuses":[503],"retry_after":"7s"}`)
	if st, ra, _ := answer(fjordvik); st != 503 || ra != "7" {
		t.Errorf("Fjordvik after PUT: %d Retry-After %q, want 503 and 7", st, ra)
	}
	if st, _, _ := answer(maaneby); st != 200 {
		t.Errorf("Måneby, without faults: %d", st)
	}
	admin("PUT", "/_sandbox/faults", `{"content_type":"text/plain"}`)
	if st, _, ct := answer(maaneby); st != 200 || ct != "text/plain" {
		t.Errorf("Måneby under a global fault: %d Content-Type %q", st, ct)
	}
	admin("DELETE", "/_sandbox/faults/"+DemoTenantFjordvik, "")
	if st, _, ct := answer(fjordvik); st != 200 || ct != "text/plain" {
		t.Errorf("Fjordvik after DELETE of its faults, under the global one: %d %q", st, ct)
	}
	admin("DELETE", "/_sandbox/faults", "")
	if st, _, ct := answer(fjordvik); st != 200 || ct != ExportContentType {
		t.Errorf("Fjordvik without faults: %d %q", st, ct)
	}
}

// TestGlobalFaultsFromConfig checks that the config's global faults act on
// every tenant and that a tenant's own fault wins over a global one.
func TestGlobalFaultsFromConfig(t *testing.T) {
	cfg := DemoConfig()
	cfg.Faults = Faults{ErrorRate: 1, ErrorStatuses: []int{500}}
	cfg.Tenants[2].Faults = Faults{ErrorStatuses: []int{502}}
	_, base := start(t, cfg)
	for tenant, want := range map[string]int{DemoTenantFjordvik: 500, DemoTenantMaaneby: 500, DemoTenantNordstrand: 502} {
		if st, _ := exportStatus(t, base, token(t, base, demoForm(tenant))); st != want {
			t.Errorf("tenant %s: %d, want %d", tenant, st, want)
		}
	}
}

// TestFaultRetryAfterAsDate: with retry_after_date the 503 answers of the
// export and the token endpoint give Retry-After as an HTTP date, the
// announced wait from now (rounded up to whole seconds).
func TestFaultRetryAfterAsDate(t *testing.T) {
	cfg := withFaults(Faults{ErrorRate: 1, ErrorStatuses: []int{503}, RetryAfter: Duration(7 * time.Second), RetryAfterDate: true})
	_, base := start(t, cfg)
	checkDate := func(what, h string) {
		t.Helper()
		at, err := http.ParseTime(h)
		if err != nil {
			t.Fatalf("%s: Retry-After %q is not an HTTP date: %v", what, h, err)
		}
		if wait := time.Until(at); wait < 6*time.Second || wait > 9*time.Second {
			t.Errorf("%s: Retry-After %q is %s from now, want about 7s", what, h, wait)
		}
	}
	resp := getExport(t, base, token(t, base, demoForm(DemoTenantFjordvik)))
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("export: %d, want the injected 503", resp.StatusCode)
	}
	checkDate("export", resp.Header.Get("Retry-After"))

	cfg = DemoConfig()
	cfg.Tenants[0].Faults = Faults{TokenEndpointDown: true, RetryAfter: Duration(7 * time.Second), RetryAfterDate: true}
	_, base = start(t, cfg)
	r := postToken(t, base, demoForm(DemoTenantFjordvik), nil)
	if r.Status != 503 {
		t.Fatalf("token endpoint: %d, want 503", r.Status)
	}
	checkDate("token endpoint", r.Header.Get("Retry-After"))
}

// With token_tenant, set at run time through the admin call, a token asked
// for Fjordvik names Måneby in its tenant claim, and the export endpoint
// serves Måneby's export to it: the misconfigured token endpoint the client
// must catch. A tenant the sandbox does not have is refused.
func TestFaultTokenForAnotherTenant(t *testing.T) {
	s, base := start(t, DemoConfig())
	put := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, base+"/_sandbox/faults/"+DemoTenantFjordvik, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := put(`{"token_tenant":"` + DemoTenantMaaneby + `"}`); st != http.StatusOK {
		t.Fatalf("set token_tenant: %d", st)
	}
	r := postToken(t, base, demoForm(DemoTenantFjordvik), nil)
	var c Claims
	if _, _, err := jwt.NewParser().ParseUnverified(r.AccessToken, &c); err != nil {
		t.Fatal(err)
	}
	if c.TenantID != DemoTenantMaaneby {
		t.Fatalf("token asked for Fjordvik names %q", c.TenantID)
	}
	if st, _ := exportStatus(t, base, r.AccessToken); st != http.StatusOK {
		t.Errorf("export with the other tenant's token: %d", st)
	}
	if f, m := s.tenantState(DemoTenantFjordvik).Exports, s.tenantState(DemoTenantMaaneby).Exports; f != 0 || m != 1 {
		t.Errorf("exports: Fjordvik %d, Måneby %d; want Måneby's served to the token asked for Fjordvik", f, m)
	}
	if r := postToken(t, base, demoForm(DemoTenantMaaneby), nil); r.Status != 200 {
		t.Errorf("Måneby's own token: %d", r.Status)
	}
	if st := put(`{"token_tenant":"00000000-0000-4000-8000-000000000000"}`); st != http.StatusBadRequest {
		t.Errorf("unknown token_tenant: %d, want 400", st)
	}
	if st := put(`{"token_tenant":"not-a-guid"}`); st != http.StatusBadRequest {
		t.Errorf("malformed token_tenant: %d, want 400", st)
	}
}
