package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/auth/authtest"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fetcher"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// TestOneJobIsOneTrace runs the three stages as the daemons wire them (the
// requester's on-demand job, the fetcher against the sandbox over HTTP, the
// publisher) on one embedded JetStream with one span recorder, and checks
// that the job is one trace: the requester's span, the fetcher's and the
// publisher's share its trace id (as do the workers' and the upstream
// client's spans), and every LMS message carries it in its traceparent
// header. No span (name, attribute, event, status) carries any
// pupil's or guardian's personal data from the export, the client secret or
// an access token, and the stages' spans carry only skolebuss.* attributes.
func TestOneJobIsOneTrace(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := bustest.Open(t)

	sc := sandbox.DemoConfig()
	for i := range sc.Tenants {
		sc.Tenants[i].Size = "tiny"
	}
	sb, err := sandbox.New(sc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	const app, tenant = "skolebuss-demo", sandbox.DemoTenantFjordvik

	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(ctx, telemetry.Config{ServiceName: "e2e", SampleRatio: 1}, quiet, telemetry.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tp := tel.TracerProvider()

	tokens := &authtest.Recorder{}
	tokens.Source, err = auth.New(auth.Config{TokenURL: srv.URL + sandbox.PathToken, Applications: []auth.Application{{
		Name: app, ClientID: sandbox.DemoClientID, ClientSecret: sandbox.DemoClientSecret, Scopes: []string{sandbox.ScopeLMSExport}}}},
		quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Source.Close()

	// The fetcher and publisher stages, and a vendor applying the events.
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		cfg := fetcher.Config{API: flytapi.Config{APIBase: srv.URL}, Applications: map[string]quota.Limits{app: {}},
			AckWait: 5 * time.Second, DrainTimeout: 2 * time.Second}
		if err := fetcher.Run(sctx, cfg, fetcher.Deps{JS: b.JS, Stores: b.Stores, Tokens: tokens, Logger: quiet, Tracer: tp}); err != nil {
			t.Errorf("fetcher: %v", err)
		}
	}()
	pub, err := publisher.New(b.Conn, b.Stores.Exports, b.Stores.Snapshots,
		publisher.Config{Diff: diff.Config{SpoolDir: t.TempDir()}, Logger: quiet, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pub.Run(sctx, b.JS, publisher.WorkerConfig(), quiet, tp); err != nil {
			t.Errorf("publisher: %v", err)
		}
	}()
	v, err := vendorcopy.New(b.JS, vendorcopy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := v.Run(sctx); err != nil {
			t.Errorf("vendor: %v", err)
		}
	}()

	// The requester starts the trace.
	r, err := requester.New(b.JS, requester.Config{Tenants: []requester.Tenant{{ID: tenant, Application: app}}}, quiet, tp)
	if err != nil {
		t.Fatal(err)
	}
	job, err := r.RequestNow(ctx, tenant, "traced")
	if err != nil {
		t.Fatal(err)
	}
	if job.TraceID == "" {
		t.Fatal("the requester returned no trace id")
	}

	fe := waitFetched(t, ctx, b.JS)
	st, err := v.WaitFor(ctx, tenant, fe.ExportID)
	if err != nil || !st.Matched {
		t.Fatalf("vendor: %+v, %v", st, err)
	}

	// Every LMS message is in the job's trace.
	lms := streamMsgs(t, b.JS, bus.StreamLMS)
	if len(lms) < 3 {
		t.Fatalf("%d LMS messages", len(lms))
	}
	for _, m := range lms {
		if tp := m.Header.Get(messages.HeaderTraceparent); !strings.Contains(tp, job.TraceID) {
			t.Fatalf("%s: traceparent %q is not of the job's trace %s", m.Subject, tp, job.TraceID)
		}
	}

	// The spans of the three stages: one trace.
	stageSpans := map[string]bool{"request export": false, "fetch export": false, "publisher.export": false}
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		spans = rec.Ended()
		all := true
		for name := range stageSpans {
			found := false
			for _, s := range spans {
				found = found || s.Name() == name
			}
			all = all && found
		}
		if all || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("spans: %s", spanNames(spans))
	for _, s := range spans {
		// One job, one trace: the stages' spans, the workers' and the
		// upstream client's alike.
		if got := s.SpanContext().TraceID().String(); got != job.TraceID {
			t.Errorf("span %q in trace %s, the job's is %s", s.Name(), got, job.TraceID)
		}
		if _, ok := stageSpans[s.Name()]; !ok {
			continue
		}
		stageSpans[s.Name()] = true
		for _, kv := range s.Attributes() {
			if !strings.HasPrefix(string(kv.Key), "skolebuss.") {
				t.Errorf("span %q: attribute %s is not one of telemetry's", s.Name(), kv.Key)
			}
		}
	}
	for name, seen := range stageSpans {
		if !seen {
			t.Errorf("no %q span (spans: %s)", name, spanNames(spans))
		}
	}
	var pubSpan sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "publisher.export" {
			pubSpan = s
		}
	}
	if pubSpan != nil {
		counts := map[string]int64{}
		for _, kv := range pubSpan.Attributes() {
			counts[string(kv.Key)] = kv.Value.AsInt64()
		}
		if total := st.Counts["person"] + st.Counts["group"] + st.Counts["org"] + st.Counts["membership"]; counts["skolebuss.count.created"] != int64(total) || total == 0 {
			t.Errorf("publisher span counts %v; the vendor has %d records", counts, total)
		}
	}

	// No personal data, secret or token anywhere in any span.
	secret := append(personalData(t, ctx, b, fe), sandbox.DemoClientSecret)
	secret = append(secret, tokens.Issued()...)
	if len(tokens.Issued()) == 0 {
		t.Fatal("no token was issued")
	}
	t.Logf("%d personal strings and secrets checked against %d spans", len(secret), len(spans))
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, kv.Value.Emit())
		}
		for _, ev := range s.Events() {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.Emit())
			}
		}
		for _, txt := range texts {
			for _, p := range secret {
				if strings.Contains(txt, p) {
					t.Errorf("span %q carries personal data or a secret (%d characters)", s.Name(), len(p))
				}
			}
		}
	}
}

// personalData is every person's names, e-mail addresses, user ids
// (national id number included), phone numbers and birthday in the export
// the fetcher stored.
func personalData(t *testing.T, ctx context.Context, b *bus.Bus, fe messages.FetchedExport) []string {
	t.Helper()
	doc, err := b.Stores.Exports.GetBytes(ctx, fe.Object)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	add := func(s string) {
		if len(s) >= 4 { // shorter strings are not identifying and match ids by chance
			out = append(out, s)
		}
	}
	d := pifu.NewDecoder(bytes.NewReader(doc))
	persons := 0
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var p pifu.Person
		if rec.Entity() != pifu.EntityPerson {
			continue
		}
		raw, err := json.Marshal(rec.Object())
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		persons++
		add(p.Name.Formatted)
		add(p.Name.Family)
		add(p.Name.Given)
		add(p.Email)
		add(p.Birthday)
		for _, ids := range [][]pifu.Typed{p.UserIDs, p.Tel, p.Emails, p.Phones} {
			for _, id := range ids {
				add(id.Value)
			}
		}
	}
	if persons == 0 || len(out) < persons {
		t.Fatalf("%d persons, %d personal strings: the check would prove nothing", persons, len(out))
	}
	return out
}

func waitFetched(t *testing.T, ctx context.Context, js jetstream.JetStream) messages.FetchedExport {
	t.Helper()
	for {
		if ms := streamMsgs(t, js, bus.StreamExports); len(ms) > 0 {
			fe, err := messages.Decode[messages.FetchedExport](ms[0])
			if err != nil {
				t.Fatal(err)
			}
			return fe
		}
		select {
		case <-ctx.Done():
			t.Fatal("no fetched export")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) []*nats.Msg {
	t.Helper()
	var out []*nats.Msg
	for _, m := range bustest.Msgs(t, js, stream) {
		out = append(out, bustest.NATSMsg(m))
	}
	return out
}

func spanNames(spans []sdktrace.ReadOnlySpan) string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return strings.Join(names, ", ")
}
