package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// These tests use small token endpoints of their own for answers the sandbox
// does not give: Retry-After as an HTTP date, resets, timeouts, odd bodies.

func TestTokenEndpointAnswersAreClassified(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		class      failure.Class
		reason     string
		retryAfter time.Duration // minimum expected; 0 means none
	}{
		{"invalid_client", 401, nil, `{"error":"invalid_client","error_description":"unknown client"}`, failure.Permanent, "invalid_client", 0},
		{"invalid_scope", 400, nil, `{"error":"invalid_scope"}`, failure.Permanent, "invalid_scope", 0},
		{"unlinked tenant", 400, nil, `{"error":"invalid_tenant","error_description":"not linked"}`, failure.Permanent, "invalid_tenant", 0},
		{"unauthorized_client", 400, nil, `{"error":"unauthorized_client"}`, failure.Permanent, "unauthorized_client", 0},
		{"invalid_request", 400, nil, `{"error":"invalid_request"}`, failure.Permanent, "invalid_request", 0},
		{"400 without a code", 400, nil, `<html>bad</html>`, failure.Permanent, "token_http_400", 0},
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, `{"error":"slow_down"}`, failure.Throttled, "token_http_429", 7 * time.Second},
		{"429 http date", 429, map[string]string{"Retry-After": date}, ``, failure.Throttled, "token_http_429", 85 * time.Second},
		{"503 with Retry-After", 503, map[string]string{"Retry-After": "3"}, `{"error":"temporarily_unavailable"}`, failure.Throttled, "token_http_503", 3 * time.Second},
		{"503 without Retry-After", 503, nil, `{"error":"temporarily_unavailable"}`, failure.Transient, "temporarily_unavailable", 0},
		{"500", 500, nil, `oops`, failure.Transient, "token_http_500", 0},
		{"502 html", 502, nil, `<html>bad gateway</html>`, failure.Transient, "token_http_502", 0},
		{"200 without a token", 200, nil, `{"token_type":"Bearer"}`, failure.Transient, "token_bad_response", 0},
		{"200 not json", 200, nil, `<html>login page</html>`, failure.Transient, "token_bad_response", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			}))
			defer ts.Close()
			var log logCapture
			s := newSource(t, ts.URL, nil, &log, nil)
			_, err := s.Token(context.Background(), Key{"app", "t1"})
			if err == nil {
				t.Fatal("no error")
			}
			if got := failure.ClassOf(err); got != tc.class {
				t.Errorf("class = %s, want %s (%v)", got, tc.class, err)
			}
			if got := failure.ReasonOf(err); got != tc.reason {
				t.Errorf("reason = %q, want %q (%v)", got, tc.reason, err)
			}
			wait, _ := failure.RetryAfter(err)
			if tc.retryAfter > 0 && (wait < tc.retryAfter || wait > tc.retryAfter+10*time.Second) {
				t.Errorf("retry after = %s, want about %s", wait, tc.retryAfter)
			}
			if tc.retryAfter == 0 && wait != 0 {
				t.Errorf("retry after = %s, want none", wait)
			}
			assertHidden(t, "error", err, testSecret)
			if strings.Contains(log.b.String(), testSecret) {
				t.Errorf("log shows the secret: %s", log.b.String())
			}
		})
	}
}

func TestEchoedSecretIsScrubbedFromErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":"secret %s is wrong"}`, r.PostForm.Get("client_secret"))
	}))
	defer ts.Close()
	_, err := newSource(t, ts.URL, nil, nil, nil).Token(context.Background(), Key{"app", "t1"})
	if failure.ReasonOf(err) != "invalid_client" || !strings.Contains(err.Error(), "[redacted] is wrong") {
		t.Fatalf("err = %v", err)
	}
	assertHidden(t, "error", err, testSecret)
}

func TestTokenTransportFailuresAreTransient(t *testing.T) {
	t.Run("connection reset", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { resetConn(w) }))
		defer ts.Close()
		_, err := newSource(t, ts.URL, nil, nil, nil).Token(context.Background(), Key{"app", "t1"})
		if failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTokenConnectionReset) {
			t.Fatalf("err = %v (%s/%s)", err, failure.ClassOf(err), failure.ReasonOf(err))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		defer ts.Close()
		defer close(release)
		s := newSource(t, ts.URL, nil, nil, func(c *Config) { c.RequestTimeout = 100 * time.Millisecond })
		_, err := s.Token(context.Background(), Key{"app", "t1"})
		if failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTokenTimeout) {
			t.Fatalf("err = %v (%s/%s)", err, failure.ClassOf(err), failure.ReasonOf(err))
		}
	})
	t.Run("refused", func(t *testing.T) {
		ts := httptest.NewServer(http.NotFoundHandler())
		url := ts.URL
		ts.Close()
		_, err := newSource(t, url, nil, nil, nil).Token(context.Background(), Key{"app", "t1"})
		if failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTokenUnreachable) {
			t.Fatalf("err = %v (%s/%s)", err, failure.ClassOf(err), failure.ReasonOf(err))
		}
	})
	t.Run("unknown application", func(t *testing.T) {
		_, err := newSource(t, "http://127.0.0.1:1/token", nil, nil, nil).Token(context.Background(), Key{"other", "t1"})
		if !failure.IsPermanent(err) || failure.ReasonOf(err) != "unknown_application" {
			t.Fatalf("err = %v", err)
		}
	})
}

// A caller that gives up while the token request is in flight gets its own
// context error at once; the request itself completes on the Source's
// context and its token serves the next caller without a second request.
func TestCallerCancellationDoesNotAbortTheTokenRequest(t *testing.T) {
	var requests atomic.Int64
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, testToken)
	}))
	defer ts.Close()
	s := newSource(t, ts.URL, nil, nil, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := s.Token(ctx, Key{"app", "t1"}); errc <- err }()
	<-arrived
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) || failure.ClassOf(err) != failure.Canceled {
		t.Fatalf("cancelled caller got %v (%s)", err, failure.ClassOf(err))
	}
	close(release)
	tok, err := s.Token(context.Background(), Key{"app", "t1"})
	if err != nil || tok.Access.Reveal() != testToken {
		t.Fatalf("after cancel: %v", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

func TestAuthStyleAndTenantParam(t *testing.T) {
	var got atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, sec, basic := r.BasicAuth()
		got.Store(fmt.Sprintf("basic=%v id=%s secret-ok=%v form-id=%s form-secret-ok=%v tenant=%s scope=%s grant=%s",
			basic, id, sec == testSecret, r.PostForm.Get("client_id"), r.PostForm.Get("client_secret") == testSecret,
			r.PostForm.Get("kommune"), r.PostForm.Get("scope"), r.PostForm.Get("grant_type")))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600}`, testToken)
	}))
	defer ts.Close()
	s := newSource(t, ts.URL, nil, nil, func(c *Config) { c.TenantParam = "kommune" })
	if _, err := s.Token(context.Background(), Key{"app", "t9"}); err != nil {
		t.Fatal(err)
	}
	want := "basic=false id= secret-ok=false form-id=client form-secret-ok=true tenant=t9 scope=vfsapi:lmsexport grant=client_credentials"
	if got.Load() != want {
		t.Errorf("params style sent\n%s\nwant\n%s", got.Load(), want)
	}
	s = newSource(t, ts.URL, nil, nil, func(c *Config) { c.AuthStyle = AuthInHeader })
	if _, err := s.Token(context.Background(), Key{"app", "t9"}); err != nil {
		t.Fatal(err)
	}
	if g := got.Load().(string); !strings.HasPrefix(g, "basic=true id=client secret-ok=true form-id= form-secret-ok=false") {
		t.Errorf("header style sent %s", g)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{TokenURL: "ftp:/x", AuthStyle: "cookie", Applications: []Application{{Name: "a"}, {Name: "a", ClientID: "x"}}}.WithDefaults().Validate()
	for _, want := range []string{"token_url", "auth_style", `"a" appears twice`, "applications[0] (a).client_id: missing", "client_secret: missing"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if _, err := New(Config{}, nil, nil); err == nil || !strings.Contains(err.Error(), "token_url: missing") {
		t.Errorf("New(zero) = %v", err)
	}
}
