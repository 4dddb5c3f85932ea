package flytapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// These tests use a local upstream for answers the sandbox does not give
// (Retry-After as a date, 403/404, Content-Length shortfalls, resets,
// stalls). The sandbox-based tests are in sandbox_test.go.

func TestStatusAnswersAreClassified(t *testing.T) {
	date := time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
	cases := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		class   failure.Class
		reason  string
		wait    time.Duration // minimum expected wait
		message string        // must appear in the error
	}{
		{"429 seconds", 429, map[string]string{"Retry-After": "12"}, "", failure.Throttled, "http_429", 12 * time.Second, "429"},
		{"429 http date", 429, map[string]string{"Retry-After": date}, "", failure.Throttled, "http_429", 115 * time.Second, "429"},
		{"429 without Retry-After", 429, nil, "", failure.Throttled, "http_429", 30 * time.Second, "429"},
		{"503 seconds", 503, map[string]string{"Retry-After": "4"}, "", failure.Throttled, "http_503", 4 * time.Second, "503"},
		{"503 http date", 503, map[string]string{"Retry-After": date}, "", failure.Throttled, "http_503", 115 * time.Second, "503"},
		{"503 without Retry-After", 503, nil, "", failure.Transient, "http_503", 0, "503"},
		{"500", 500, nil, "boom", failure.Transient, "http_500", 0, "boom"},
		{"502", 502, nil, "<html>bad gateway</html>", failure.Transient, "http_502", 0, "bad gateway"},
		{"403", 403, nil, `{"error":"insufficient_scope","error_description":"token lacks vfsapi:lmsexport"}`, failure.Permanent, "forbidden", 0, "lacks vfsapi:lmsexport"},
		{"404", 404, nil, `{"message":"tenant has no export"}`, failure.Permanent, "not_found", 0, "tenant has no export"},
		{"400", 400, nil, "", failure.Permanent, "http_400", 0, "400"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
			exp, err := c.FetchExport(context.Background(), "app", "t1")
			if err == nil {
				exp.Body.Close()
				t.Fatal("no error")
			}
			if failure.ClassOf(err) != tc.class || failure.ReasonOf(err) != tc.reason {
				t.Errorf("got %s/%s, want %s/%s: %v", failure.ClassOf(err), failure.ReasonOf(err), tc.class, tc.reason, err)
			}
			wait, _ := failure.RetryAfter(err)
			if wait < tc.wait || (tc.wait == 0 && wait != 0) || wait > tc.wait+10*time.Second {
				t.Errorf("wait = %s, want about %s", wait, tc.wait)
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.Contains(err.Error(), "t1") {
				t.Errorf("error %q does not name %q and the tenant", err, tc.message)
			}
		})
	}
}

func TestWrongContentTypeIsPermanent(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html>maintenance</html>")
	})
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	_, err := c.FetchExport(context.Background(), "app", "t1")
	if !failure.IsPermanent(err) || !failure.HasReason(err, failure.ReasonWrongContentType) || !strings.Contains(err.Error(), `"text/html; charset=utf-8"`) {
		t.Fatalf("err = %v", err)
	}
}

// readAll reads b to the end as a caller would.
func readAll(b io.Reader) (int, error) {
	n, err := io.Copy(io.Discard, b)
	return int(n), err
}

func TestShortBodyIsTransientNeverEOF(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		conn := rawConn(t, w, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 5000\r\n\r\n<enterprise><person>")
		conn.Close() // FIN after 20 of 5000 bytes
	})
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	exp, err := c.FetchExport(context.Background(), "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	if exp.ContentLength != 5000 {
		t.Errorf("ContentLength = %d", exp.ContentLength)
	}
	n, err := readAll(exp.Body)
	if err == nil || failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTruncatedBody) {
		t.Fatalf("read %d bytes, err = %v", n, err)
	}
	if _, again := exp.Body.Read(make([]byte, 10)); again == nil || errors.Is(again, io.EOF) && again == io.EOF {
		t.Errorf("a second Read gave %v, want the same error", again)
	}
}

func TestConnectionResetMidwayIsTransient(t *testing.T) {
	firstRead := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		conn := rawConn(t, w, "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n<enterprise>    \r\n")
		<-firstRead
		reset(conn)
	})
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	exp, err := c.FetchExport(context.Background(), "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	buf := make([]byte, 16)
	if _, err := io.ReadFull(exp.Body, buf); err != nil {
		t.Fatal(err)
	}
	close(firstRead)
	_, err = readAll(exp.Body)
	if failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonConnectionReset) {
		t.Fatalf("err = %v (%s/%s)", err, failure.ClassOf(err), failure.ReasonOf(err))
	}
}

func TestStalledBodyIsAbortedAfterIdleTimeout(t *testing.T) {
	up := stallingUpstream(t, true)
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, func(c *Config) { c.IdleTimeout = 150 * time.Millisecond })
	exp, err := c.FetchExport(context.Background(), "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	start := time.Now()
	n, err := readAll(exp.Body)
	if n != len("<enterprise>") || failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonBodyStalled) {
		t.Fatalf("read %d, err = %v", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stall detected after %s", d)
	}
}

func TestCancelDuringBodyIsCanceled(t *testing.T) {
	up := stallingUpstream(t, true)
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	exp, err := c.FetchExport(ctx, "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = readAll(exp.Body)
	if failure.ClassOf(err) != failure.Canceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v (%s)", err, failure.ClassOf(err))
	}
}

func TestUnauthorizedRetriesOnceWithANewToken(t *testing.T) {
	t.Run("second token accepted", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, tok int64) {
			if tok == 1 {
				w.WriteHeader(401)
				return
			}
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, "<enterprise/>")
		})
		c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
		exp, err := c.FetchExport(context.Background(), "app", "t1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(exp.Body)
		exp.Body.Close()
		if err != nil || string(b) != "<enterprise/>" || up.tokens.Load() != 2 {
			t.Fatalf("body %q, err %v, token requests %d (want 2)", b, err, up.tokens.Load())
		}
	})
	t.Run("every token rejected", func(t *testing.T) {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, tok int64) { w.WriteHeader(401) })
		c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
		_, err := c.FetchExport(context.Background(), "app", "t1")
		if !failure.IsPermanent(err) || !failure.HasReason(err, failure.ReasonUnauthorized) || up.tokens.Load() != 2 {
			t.Fatalf("err %v, token requests %d (want 2)", err, up.tokens.Load())
		}
		// The rejected token is not kept: the next fetch asks for a new one.
		_, _ = c.FetchExport(context.Background(), "app", "t1")
		if up.tokens.Load() != 4 {
			t.Errorf("token requests = %d, want 4", up.tokens.Load())
		}
	})
}

func TestDeprecationReportedAndLoggedOnce(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Api-Version", "1.4.0")
		w.Header().Set("Deprecation", "@1767225600")
		w.Header().Set("Sunset", "Wed, 30 Jun 2027 00:00:00 GMT")
		fmt.Fprint(w, "<enterprise/>")
	})
	var log logBuf
	c, _ := newClient(t, up.URL, "id", testSecret, nil, &log, nil)
	for range 3 {
		exp, err := c.FetchExport(context.Background(), "app", "t1")
		if err != nil {
			t.Fatal(err)
		}
		exp.Body.Close()
		if exp.APIVersion != "1.4.0" || exp.Deprecation != "@1767225600" || exp.Sunset != "Wed, 30 Jun 2027 00:00:00 GMT" {
			t.Fatalf("export = %+v", exp)
		}
	}
	if n := strings.Count(log.String(), "announces its deprecation"); n != 1 {
		t.Errorf("deprecation warned %d times, want once:\n%s", n, log.String())
	}
}

func TestSpansCarryTheTenantAndNoToken(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, "<enterprise/>")
	})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	src, err := auth.New(auth.Config{TokenURL: up.URL + "/connect/token",
		Applications: []auth.Application{{Name: "app", ClientID: "id", ClientSecret: testSecret}}}, nil, tp)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	c := New(Config{APIBase: up.URL}, src, nil, tp)
	exp, err := c.FetchExport(context.Background(), "app", "t-42")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, exp.Body)
	exp.Body.Close()
	names := map[string]bool{}
	for _, s := range rec.Ended() {
		names[s.Name()] = true
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), "tok-") || strings.Contains(kv.Value.Emit(), testSecret) {
				t.Errorf("span %s attribute %s shows a credential", s.Name(), kv.Key)
			}
		}
		if s.Name() == "flytapi.FetchExport" {
			if !hasAttr(s.Attributes(), "skolebuss.tenant", "t-42") || !hasAttr(s.Attributes(), "skolebuss.count.body_bytes", "13") {
				t.Errorf("fetch span attributes: %v", s.Attributes())
			}
		}
	}
	for _, want := range []string{"flytapi.FetchExport", "GET export", "auth.token", "POST token"} {
		if !names[want] {
			t.Errorf("no span %q among %v", want, names)
		}
	}
}

func hasAttr(kvs []attribute.KeyValue, k, v string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == k && kv.Value.Emit() == v {
			return true
		}
	}
	return false
}

func TestCloseFromAnotherGoroutineAbortsARead(t *testing.T) {
	up := stallingUpstream(t, true)
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	exp, err := c.FetchExport(context.Background(), "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := readAll(exp.Body); errc <- err }()
	time.Sleep(20 * time.Millisecond) // let the reader block (the test passes either way)
	exp.Body.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a Read aborted by Close reported a clean end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not abort the Read")
	}
}

// A body that carries the whole document but ends without the terminating
// chunk is cut short all the same: a parser reading it gets the transient
// error, never a clean end, so the export is not taken as whole.
func TestWholeDocumentWithoutItsLastChunkIsNotWhole(t *testing.T) {
	doc := "<?xml version=\"1.0\"?>\n<enterprise><properties><datasource>s</datasource><type>full</type></properties>" +
		"<person><sourcedid><source>s</source><id>P1</id></sourcedid><name><fn>A</fn></name></person></enterprise>\n"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		conn := rawConn(t, w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(doc), doc))
		conn.Close() // FIN where "0\r\n\r\n" should have come
	})
	c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
	exp, err := c.FetchExport(context.Background(), "app", "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Body.Close()
	d := pifu.NewDecoder(exp.Body)
	records := 0
	for {
		_, err = d.Next()
		if err != nil {
			break
		}
		records++
	}
	if errors.Is(err, io.EOF) || failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTruncatedBody) {
		t.Fatalf("after %d records the parser got %v (%s/%s), want the transient %s", records, err, failure.ClassOf(err), failure.ReasonOf(err), failure.ReasonTruncatedBody)
	}
}

// The caller's deadline bounds the whole fetch: waiting for the answer and
// reading the body. Running out is a transient timeout, not a cancellation.
func TestCallerDeadlineIsATransientTimeout(t *testing.T) {
	for _, where := range []string{"before the answer", "in the body"} {
		t.Run(where, func(t *testing.T) {
			up := stallingUpstream(t, where == "in the body")
			c, _ := newClient(t, up.URL, "id", testSecret, nil, nil, nil)
			if _, err := c.tokens.Token(context.Background(), auth.Key{App: "app", Tenant: "t1"}); err != nil {
				t.Fatal(err) // the token first, so that the deadline falls on the export
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			exp, err := c.FetchExport(ctx, "app", "t1")
			if err == nil {
				defer exp.Body.Close()
				_, err = readAll(exp.Body)
			}
			if failure.ClassOf(err) != failure.Transient || !failure.HasReason(err, failure.ReasonTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v (%s/%s), want a transient %s", err, failure.ClassOf(err), failure.ReasonOf(err), failure.ReasonTimeout)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the deadline took %s to act", d)
			}
		})
	}
}
