package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// start serves cfg over real HTTP and returns the server and its URL.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts.URL
}

// tokenReply is a token endpoint answer, success or error.
type tokenReply struct {
	Status      int
	Header      http.Header
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// postToken posts form to the token endpoint (and HTTP Basic credentials
// when basic is not nil).
func postToken(t *testing.T, base string, form url.Values, basic []string) tokenReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r tokenReply
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("token answer %d is not JSON: %v: %q", resp.StatusCode, err, body)
	}
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r
}

func demoForm(tenant string) url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {DemoClientID},
		"client_secret": {DemoClientSecret},
		"scope":         {ScopeLMSExport},
		"tenant_ID":     {tenant},
	}
}

// token gets a token or fails the test.
func token(t *testing.T, base string, form url.Values) string {
	t.Helper()
	r := postToken(t, base, form, nil)
	if r.Status != http.StatusOK || r.AccessToken == "" {
		t.Fatalf("token: %d %s: %s", r.Status, r.Error, r.Description)
	}
	return r.AccessToken
}

// getExport calls the export endpoint with tok (none when empty).
func getExport(t *testing.T, base, tok string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+PathExport, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// readExport gets the whole export body, requiring 200.
func readExport(t *testing.T, base, tok string) []byte {
	t.Helper()
	resp := getExport(t, base, tok)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d: %s", resp.StatusCode, body)
	}
	return body
}

// oneTenant is a config of one tiny tenant linked to one application.
func oneTenant() Config {
	seed := uint64(42)
	return Config{
		Applications: []Application{{
			ClientID: DemoClientID, ClientSecret: DemoClientSecret,
			Scopes: []string{ScopeLMSExport}, Tenants: []string{DemoTenantFjordvik},
		}},
		Tenants: []Tenant{{ID: DemoTenantFjordvik, Name: "Fjordvik kommune", Size: "tiny", Seed: &seed}},
	}
}
