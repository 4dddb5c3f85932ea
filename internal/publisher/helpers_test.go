package publisher_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

const tenant = "aa750693-e3ea-441b-93fe-6a71a8371afa"

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// env is an embedded JetStream with the pipeline's streams, a publisher, a
// running demo vendor and a generated municipality.
type env struct {
	t      testing.TB
	ctx    context.Context
	bus    *bus.Bus
	pub    *publisher.Publisher
	vendor *vendorcopy.Vendor
	muni   *rostergen.Municipality
}

func newEnv(t testing.TB, preset string) *env { return newEnvVendor(t, preset, true) }

// newEnvVendor is newEnv, with or without the vendor.
func newEnvVendor(t testing.TB, preset string, withVendor bool) *env {
	t.Helper()
	return newEnvOn(t, bustest.Open(t), preset, withVendor)
}

// newEnvOn is newEnvVendor on the bus b.
func newEnvOn(t testing.TB, b *bus.Bus, preset string, withVendor bool) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pub, err := publisher.New(b.Conn, b.Stores.Exports, b.Stores.Snapshots,
		publisher.Config{Diff: diffConfig(t), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vendorcopy.New(b.JS, vendorcopy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if withVendor {
		go func() { done <- v.Run(ctx) }()
	} else {
		done <- nil
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("vendor: %v", err)
		}
	})
	sizes, err := rostergen.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	muni, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Fjordvik kommune", Seed: 7, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: ctx, bus: b, pub: pub, vendor: v, muni: muni}
}

// export writes generation gen, stores it and returns its fetched-export
// message and the document.
func (e *env) export(gen uint64) (messages.FetchedExport, []byte) {
	e.t.Helper()
	var buf bytes.Buffer
	if _, err := e.muni.WriteExport(e.ctx, &buf, gen); err != nil {
		e.t.Fatal(err)
	}
	return e.put(fmt.Sprintf("gen%d", gen), buf.Bytes()), buf.Bytes()
}

// put stores doc as the export of job id and returns its message.
func (e *env) put(id string, doc []byte) messages.FetchedExport {
	e.t.Helper()
	sum := sha256.Sum256(doc)
	fe := messages.FetchedExport{JobID: "job-" + id, ExportID: "export-" + id, Tenant: tenant, Application: "skolebuss-demo",
		Object: tenant + "/export-" + id, Size: int64(len(doc)), SHA256: hex.EncodeToString(sum[:]),
		FetchedAt: time.Date(2026, 8, 17, 6, 0, 0, 0, time.UTC)}
	if _, err := e.bus.Stores.Exports.Put(e.ctx, jetstream.ObjectMeta{Name: fe.Object}, bytes.NewReader(doc)); err != nil {
		e.t.Fatal(err)
	}
	return fe
}

// process runs the publisher on fe and waits until the vendor has applied it.
func (e *env) process(fe messages.FetchedExport) publisher.Outcome {
	e.t.Helper()
	out, err := e.pub.Process(e.ctx, fe)
	if err != nil {
		e.t.Fatalf("process %s: %v", fe.ExportID, err)
	}
	e.waitVendor(fe.ExportID)
	return out
}

func (e *env) waitVendor(exportID string) vendorcopy.Status {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	st, err := e.vendor.WaitFor(ctx, tenant, exportID)
	if err != nil {
		e.t.Fatalf("%v (status %+v)", err, st)
	}
	if !st.Matched {
		e.t.Fatalf("the vendor's copy does not match export %s: %s", exportID, st.Mismatch)
	}
	return st
}

// lmsMsg is one message of the LMS stream.
type lmsMsg struct {
	seq     uint64
	subject messages.LMSSubject
	msg     *nats.Msg
}

// readLMS reads the LMS stream from sequence from (1: the start) to its end,
// in stream order.
func readLMS(t *testing.T, js jetstream.JetStream, from uint64) []lmsMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	if last < from {
		return nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	var out []lmsMsg
	for len(out) == 0 || out[len(out)-1].seq < last {
		batch, err := cons.FetchNoWait(4096)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			subj, err := messages.ParseLMSSubject(m.Subject())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, lmsMsg{seq: md.Sequence.Stream, subject: subj,
				msg: &nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}})
		}
		if n == 0 {
			t.Fatalf("LMS stream: got to sequence %d of %d", len(out), last)
		}
	}
	return out
}

func lastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// truth is what a document holds: per entity, key to canonical JSON, the
// first of records with the same key kept (as the diff does).
func truth(t *testing.T, doc []byte) map[pifu.Entity]map[string]json.RawMessage {
	t.Helper()
	out := map[pifu.Entity]map[string]json.RawMessage{}
	for _, e := range pifu.Entities {
		out[e] = map[string]json.RawMessage{}
	}
	d := pifu.NewDecoder(bytes.NewReader(doc))
	for {
		rec, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		m := out[rec.Entity()]
		if _, dup := m[rec.Key()]; dup {
			continue
		}
		b, err := json.Marshal(rec.Object())
		if err != nil {
			t.Fatal(err)
		}
		m[rec.Key()] = b
	}
}

// sameCopy fails unless the vendor's copy is exactly want.
func sameCopy(t *testing.T, got, want map[pifu.Entity]map[string]json.RawMessage) {
	t.Helper()
	for _, e := range pifu.Entities {
		g, w := got[e], want[e]
		if len(g) != len(w) {
			t.Errorf("%s: the copy has %d records, the export %d", e, len(g), len(w))
		}
		bad := 0
		for k, obj := range w {
			if !bytes.Equal(g[k], obj) {
				if bad++; bad <= 3 {
					t.Errorf("%s %s: copy %s, export %s", e, k, g[k], obj)
				}
			}
		}
	}
}
