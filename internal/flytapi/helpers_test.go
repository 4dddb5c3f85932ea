package flytapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/auth"
)

const testSecret = "flyt-Client-Secret-77"

// upstream is a small local stand-in for answers the sandbox cannot give:
// a token endpoint issuing "tok-1", "tok-2", ... and an export handler of
// the test's choosing, which gets the token number the request carried.
type upstream struct {
	*httptest.Server
	tokens atomic.Int64
	export func(w http.ResponseWriter, r *http.Request, tok int64)
}

func newUpstream(t *testing.T, export func(w http.ResponseWriter, r *http.Request, tok int64)) *upstream {
	t.Helper()
	return newUpstreamB(t, export)
}

func newUpstreamB(t testing.TB, export func(w http.ResponseWriter, r *http.Request, tok int64)) *upstream {
	t.Helper()
	u := &upstream{export: export}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect/token", func(w http.ResponseWriter, r *http.Request) {
		n := u.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
	})
	mux.HandleFunc("GET "+DefaultExportPath, func(w http.ResponseWriter, r *http.Request) {
		var n int64
		fmt.Sscanf(r.Header.Get("Authorization"), "Bearer tok-%d", &n)
		u.export(w, r, n)
	})
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newClient builds a real auth.Source and Client against baseURL (token URL
// baseURL+tokenPath).
func newClient(t testing.TB, baseURL, clientID, secret string, scopes []string, log *logBuf, mod func(*Config)) (*Client, *auth.Source) {
	t.Helper()
	var logger *slog.Logger
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := auth.New(auth.Config{
		TokenURL: baseURL + "/connect/token",
		Applications: []auth.Application{{
			Name: "app", ClientID: clientID, ClientSecret: auth.Secret(secret), Scopes: scopes,
		}},
	}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	cfg := Config{APIBase: baseURL, IdleTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg, src, logger, nil), src
}

// rawConn takes the connection over and writes head as the raw answer.
func rawConn(t *testing.T, w http.ResponseWriter, head string) net.Conn {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return nil
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Error(err)
	}
	return conn
}

// reset closes conn with a TCP RST.
func reset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

// stallingUpstream answers the export (after the start of a document, with
// startBody) with nothing more until the client goes away or the test ends.
func stallingUpstream(t *testing.T, startBody bool) *upstream {
	t.Helper()
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		if startBody {
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, "<enterprise>")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	return up
}
