package auth

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport is the real transport with a count of token requests.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func newCounting() *countingTransport {
	return &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// logCapture collects everything logged at debug level and up, to check
// that no secret reaches the log.
type logCapture struct{ b strings.Builder }

func (l *logCapture) Write(p []byte) (int, error) { return l.b.Write(p) }

func newSource(t *testing.T, tokenURL string, rt http.RoundTripper, log *logCapture, mod func(*Config)) *Source {
	t.Helper()
	cfg := Config{
		TokenURL:       tokenURL,
		RequestTimeout: 5 * time.Second,
		Transport:      rt,
		Applications: []Application{{
			Name: "app", ClientID: "client", ClientSecret: Secret(testSecret), Scopes: []string{"vfsapi:lmsexport"},
		}},
	}
	if mod != nil {
		mod(&cfg)
	}
	var logger *slog.Logger
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// resetConn answers by resetting the TCP connection (RST, not FIN).
func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// poll waits up to 5s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
