package fetcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/auth/authtest"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const (
	demoApp    = "skolebuss-demo"
	fjordvik   = sandbox.DemoTenantFjordvik
	maaneby    = sandbox.DemoTenantMaaneby
	nordstrand = sandbox.DemoTenantNordstrand
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is one test's world: an embedded JetStream, the sandbox over real
// HTTP, a token source that remembers every token it handed out, and
// telemetry that keeps spans and metrics in the process.
type env struct {
	bus    *bus.Bus
	sb     *sandbox.Server
	srv    *httptest.Server
	tokens *authtest.Recorder
	tel    *telemetry.Telemetry
	spans  *tracetest.SpanRecorder
}

// smallSandbox is the demo sandbox with three tiny tenants.
func smallSandbox() sandbox.Config {
	c := sandbox.DemoConfig()
	for i := range c.Tenants {
		c.Tenants[i].Size = "tiny"
	}
	return c
}

func newEnv(t testing.TB, sc sandbox.Config) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := &env{spans: tracetest.NewSpanRecorder()}
	e.bus = bustest.Open(t)
	var err error
	if e.sb, err = sandbox.New(sc, quiet()); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.sb.Handler())
	t.Cleanup(func() { e.srv.Close(); _ = e.sb.Close() })
	if e.tel, err = telemetry.New(ctx, telemetry.Config{ServiceName: "test", SampleRatio: 1}, quiet(), telemetry.WithSpanProcessor(e.spans)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.tel.Shutdown(context.Background()) })
	src, err := auth.New(auth.Config{
		TokenURL: e.srv.URL + sandbox.PathToken,
		Applications: []auth.Application{
			{Name: demoApp, ClientID: sandbox.DemoClientID, ClientSecret: sandbox.DemoClientSecret, Scopes: []string{sandbox.ScopeLMSExport}},
			// Gets a token without the export scope: the API answers 403.
			{Name: "noscope", ClientID: sandbox.DemoNoScopeClientID, ClientSecret: sandbox.DemoNoScopeClientSecret, Scopes: []string{"vfsapi:employees"}},
			// Asks for a scope the client does not have: invalid_scope.
			{Name: "badscope", ClientID: sandbox.DemoNoScopeClientID, ClientSecret: sandbox.DemoNoScopeClientSecret, Scopes: []string{sandbox.ScopeLMSExport}},
		},
	}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	e.tokens = &authtest.Recorder{Source: src}
	return e
}

// config is a fetcher config for the test: fast retries, short AckWait.
func (e *env) config(apps map[string]quota.Limits) Config {
	if apps == nil {
		apps = map[string]quota.Limits{demoApp: {}, "noscope": {}, "badscope": {}}
	}
	return Config{
		API:          flytapi.Config{APIBase: e.srv.URL},
		Applications: apps,
		AckWait:      3 * time.Second,
		MaxAttempts:  5,
		Backoff:      []time.Duration{100 * time.Millisecond},
		DrainTimeout: 2 * time.Second,
		Breaker:      BreakerConfig{Failures: 100},
	}
}

func (e *env) deps() Deps {
	return Deps{JS: e.bus.JS, Stores: e.bus.Stores, Tokens: e.tokens, Logger: quiet(),
		Tracer: e.tel.TracerProvider(), Meter: e.tel.MeterProvider()}
}

// run starts n fetchers (replicas) and stops them when the test ends.
func (e *env) run(t *testing.T, cfg Config, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Run(ctx, cfg, e.deps()); err != nil {
				t.Errorf("fetcher: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// request publishes a job the way the requester does (it starts the trace).
func (e *env) request(t *testing.T, tenant, app, id string) requester.Result {
	t.Helper()
	r, err := requester.New(e.bus.JS, requester.Config{Tenants: []requester.Tenant{{ID: tenant, Application: app}}},
		quiet(), e.tel.TracerProvider())
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.RequestNow(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// msgs returns the messages of stream.
func (e *env) msgs(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	return bustest.Msgs(t, e.bus.JS, stream)
}

func (e *env) fetchedExports(t *testing.T) []messages.FetchedExport {
	t.Helper()
	var out []messages.FetchedExport
	for _, m := range e.msgs(t, bus.StreamExports) {
		fe, err := messages.Decode[messages.FetchedExport](&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fe)
	}
	return out
}

func (e *env) deadLetters(t *testing.T) []messages.DeadLetter {
	t.Helper()
	var out []messages.DeadLetter
	for _, m := range e.msgs(t, bus.StreamDLQ) {
		dl, err := messages.Decode[messages.DeadLetter](&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// stats reads the sandbox's admin stats over HTTP.
func (e *env) stats(t *testing.T) sandbox.Stats {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s sandbox.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// setFaults sets (or, with a zero Faults, clears) a tenant's faults through
// the admin API.
func (e *env) setFaults(t *testing.T, tenant string, f sandbox.Faults) {
	t.Helper()
	method, body := http.MethodPut, []byte{}
	if f.IsZero() {
		method = http.MethodDelete
	} else {
		var err error
		if body, err = json.Marshal(f); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+"/_sandbox/faults/"+tenant, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s faults: %s", method, resp.Status)
	}
}

// direct fetches tenant's export straight from the sandbox, as the truth.
func (e *env) direct(t *testing.T, tenant string) []byte {
	t.Helper()
	tok, err := e.tokens.Source.Token(context.Background(), auth.Key{App: demoApp, Tenant: tenant})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+flytapi.DefaultExportPath, nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("direct fetch: %s, %v", resp.Status, err)
	}
	return b
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.Condition(t, d, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

func natsMsg(subject string, h map[string][]string, data []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: nats.Header(h), Data: data}
}

func attrKey(k string) attribute.Key { return attribute.Key(k) }
