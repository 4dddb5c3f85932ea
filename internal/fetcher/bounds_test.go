package fetcher

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// countingTransport is the real transport with a count of the requests the
// export client sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// nothingStored fails t if the exports store holds an object, or any chunk
// of one, or the EXPORTS stream an announcement.
func (e *env) nothingStored(t *testing.T) {
	t.Helper()
	if n := len(e.fetchedExports(t)); n != 0 {
		t.Errorf("%d exports announced", n)
	}
	if _, err := e.bus.Stores.Exports.List(context.Background()); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Errorf("objects in the store: %v", err)
	}
	s, err := e.bus.JS.Stream(context.Background(), exportsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d messages (chunks) left in %s", info.State.Msgs, exportsStream)
	}
}

// oneDeadLetter waits for the job's dead letter and checks its reason.
func (e *env) oneDeadLetter(t *testing.T, within time.Duration, reason failure.Reason) messages.DeadLetter {
	t.Helper()
	waitFor(t, within, "the dead letter", func() bool { return len(e.deadLetters(t)) > 0 })
	dls := e.deadLetters(t)
	if len(dls) != 1 || dls[0].Reason != string(reason) || dls[0].Class != failure.Permanent.String() || dls[0].Attempts != 1 {
		t.Fatalf("dead letters %+v; want one, %s, permanent, at the first attempt", dls, reason)
	}
	return dls[0]
}

// A body that trickles in steadily (a piece every tenth of a second, so the
// idle timeout never fires) is cut at the export deadline: the job ends as a
// Permanent export_deadline within the deadline, and nothing is stored or
// announced.
func TestTricklingBodyCutAtTheDeadline(t *testing.T) {
	e := newEnv(t, smallSandbox())
	const bps, deadline = 4000, 1500 * time.Millisecond
	size := len(e.direct(t, fjordvik))
	if need := time.Duration(size/bps) * time.Second; need < 4*deadline {
		t.Fatalf("the export (%d bytes) would arrive in %s at %d B/s, too soon to test a %s deadline", size, need, bps, deadline)
	}
	before := e.stats(t).Applications[sandbox.DemoClientID].Requests
	e.setFaults(t, fjordvik, sandbox.Faults{SlowBody: bps})
	cfg := e.config(nil)
	cfg.Bounds = Bounds{Deadline: deadline}
	e.run(t, cfg, 1)
	start := time.Now()
	e.request(t, fjordvik, demoApp, "trickle")
	dl := e.oneDeadLetter(t, 10*time.Second, failure.ReasonExportDeadline)
	took := time.Since(start)
	if took < deadline || took > deadline+3*time.Second {
		t.Errorf("the job ended after %s; want just after the %s deadline", took.Round(time.Millisecond), deadline)
	}
	t.Logf("cut after %s: %s", took.Round(time.Millisecond), dl.Error)
	e.nothingStored(t)
	if n := e.stats(t).Applications[sandbox.DemoClientID].Requests - before; n != 1 {
		t.Errorf("%d export requests, want 1 (a deadline is not retried)", n)
	}
}

// A body larger than the tenant's maximum size is cut after the byte past
// it: a Permanent export_too_large, the partial object deleted, nothing
// announced. Another tenant, with the default bound, is fetched whole.
func TestOversizedBodyRefused(t *testing.T) {
	e := newEnv(t, smallSandbox())
	size := len(e.direct(t, maaneby))
	cfg := e.config(nil)
	cfg.TenantBounds = map[string]Bounds{maaneby: {MaxSize: int64(size / 3)}}
	e.run(t, cfg, 1)
	e.request(t, maaneby, demoApp, "big")
	dl := e.oneDeadLetter(t, 10*time.Second, failure.ReasonExportTooLarge)
	if want := "more than the maximum export size of " + strconv.Itoa(size/3) + " bytes"; !strings.Contains(dl.Error, want) {
		t.Errorf("error %q does not say %q", dl.Error, want)
	}
	e.nothingStored(t)

	e.request(t, nordstrand, demoApp, "default-bound")
	waitFor(t, 10*time.Second, "the other tenant's export", func() bool { return len(e.fetchedExports(t)) == 1 })
}

// An answer that announces more than the maximum in its Content-Length is
// refused before its body is read. A proxy in front of the sandbox buffers
// the body and sends its length, which the sandbox (streaming) does not.
func TestAnnouncedOversizeRefused(t *testing.T) {
	e := newEnv(t, smallSandbox())
	size := len(e.direct(t, fjordvik))
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, e.srv.URL+r.URL.Path, nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(proxy.Close)
	cfg := e.config(nil)
	cfg.API.APIBase = proxy.URL
	cfg.Bounds = Bounds{MaxSize: int64(size - 1)}
	e.run(t, cfg, 1)
	e.request(t, fjordvik, demoApp, "announced")
	dl := e.oneDeadLetter(t, 10*time.Second, failure.ReasonExportTooLarge)
	if want := "the answer announces " + strconv.Itoa(size) + " bytes"; !strings.Contains(dl.Error, want) {
		t.Errorf("error %q does not say %q", dl.Error, want)
	}
	e.nothingStored(t)
}

// A token endpoint answering for another tenant (the sandbox's token_tenant
// fault: Fjordvik's token names Måneby, and the API would serve Måneby's
// roster to it) is refused before any export request: a Permanent
// token_wrong_tenant, no request to the export API, nothing stored or
// announced under Fjordvik.
func TestTokenForAnotherTenantRefusedBeforeTheExport(t *testing.T) {
	e := newEnv(t, smallSandbox())
	e.setFaults(t, fjordvik, sandbox.Faults{TokenTenant: maaneby})
	counter := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := e.config(nil)
	cfg.API.Transport = counter
	e.run(t, cfg, 1)
	e.request(t, fjordvik, demoApp, "wrong-tenant")
	e.oneDeadLetter(t, 10*time.Second, failure.ReasonTokenWrongTenant)
	if n := counter.n.Load(); n != 0 {
		t.Errorf("%d requests to the export API, want none", n)
	}
	st := e.stats(t)
	if a := st.Applications[sandbox.DemoClientID]; a.TokensIssued != 1 || a.Requests != 0 {
		t.Errorf("sandbox: %d tokens issued, %d export requests; want 1 and 0", a.TokensIssued, a.Requests)
	}
	for _, ts := range st.Tenants {
		if ts.Exports != 0 {
			t.Errorf("tenant %s: %d exports served", ts.ID, ts.Exports)
		}
	}
	e.nothingStored(t)
	// The check is the token's tenant, not a broken fetcher: without the
	// fault the same tenant is fetched.
	e.setFaults(t, fjordvik, sandbox.Faults{})
	e.request(t, fjordvik, demoApp, "right-tenant")
	waitFor(t, 10*time.Second, "the export", func() bool { return len(e.fetchedExports(t)) == 1 })
	if fe := e.fetchedExports(t)[0]; fe.Tenant != fjordvik || counter.n.Load() != 1 {
		t.Errorf("fetched %+v after %d requests", fe, counter.n.Load())
	}
}
