package messages

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// fuzzSeeds are real messages of every type, as Encode writes them.
func fuzzSeeds(t testing.TB) []*nats.Msg {
	var vs []Codable
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			vs = append(vs, sampleEvent(t, e, op))
		}
	}
	counts := map[pifu.Entity]Counts{pifu.EntityPerson: {Created: 3, Total: 3}}
	vs = append(vs,
		ExportJob{JobID: "demand-1", Tenant: tenant, Application: "skolebuss-demo", Reason: ReasonDemand, RequestedAt: at},
		ExportJob{JobID: "sched-1", Tenant: tenant, Application: "skolebuss-demo", Reason: ReasonSchedule, Slot: at.Truncate(time.Hour), RequestedAt: at},
		FetchedExport{JobID: "demand-1", ExportID: "exp-42", Tenant: tenant, Application: "skolebuss-demo", Object: "o",
			Size: 10, SHA256: string(bytes.Repeat([]byte("ab"), 32)), FetchedAt: at, Deprecation: "@1", Force: true},
		Boundary{ID: BoundaryID(tenant, "exp-42", PhaseStarted), Tenant: tenant, ExportID: "exp-42", Phase: PhaseStarted,
			Time: at, Counts: counts, Upstream: &Upstream{APIVersion: "1.2"}},
		Boundary{ID: BoundaryID(tenant, "exp-42", PhaseCompleted), Tenant: tenant, ExportID: "exp-42", Phase: PhaseCompleted,
			Time: at, Counts: counts, Checksum: "xxh64sum:0123456789abcdef"},
		NewDeadLetter("fetch", tenant, &nats.Msg{Subject: "jobs.export." + tenant, Data: []byte("{}"),
			Header: nats.Header{"Authorization": {"Bearer x"}, HeaderID: {"j"}}}, failure.Permanentf(failure.ReasonInvalidScope, "no"), 1, "", at),
		QuotaAlert{Application: "skolebuss-demo", Kind: "threshold", Period: "daily", PeriodKey: "2026-03-02", Threshold: 0.8, Used: 8, Limit: 10, At: at},
		TenantUnlinked{ID: UnlinkedID("lms-a", tenant, "exp-42"), Vendor: "lms-a", Tenant: tenant, Time: at},
	)
	out := make([]*nats.Msg, len(vs))
	for i, v := range vs {
		m, err := Encode(v)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		out[i] = m
	}
	return out
}

// FuzzDecode feeds any headers and body to the decoders of every message
// type. A message either decodes or is refused as a permanent failure with
// a reason (never a panic, never a retryable error); a decoded value
// encodes again (what was received can be sent), and its encoding is a
// fixed point: decoding and encoding it once more gives the same bytes.
func FuzzDecode(f *testing.F) {
	for _, m := range fuzzSeeds(f) {
		f.Add(m.Header.Get(HeaderSpecVersion), m.Header.Get(HeaderType), m.Header.Get(HeaderID),
			m.Header.Get(HeaderSubject), m.Header.Get(HeaderTime), m.Data)
	}
	f.Add(SpecVersion, TypeExportJob, "j", tenant, "0000-01-01T00:00:00+01:00",
		[]byte(`{"job_id":"j","tenant":"`+tenant+`","application":"a","reason":"demand","requested_at":"0000-01-01T00:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, spec, ceType, id, subject, ceTime string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{HeaderSpecVersion: spec, HeaderType: ceType, HeaderID: id,
			HeaderSubject: subject, HeaderTime: ceTime} {
			if v != "" {
				h.Set(k, v)
			}
		}
		m := &nats.Msg{Subject: "fuzz", Header: h, Data: data}
		roundTrip[ExportJob](t, m)
		roundTrip[FetchedExport](t, m)
		roundTrip[Event](t, m)
		roundTrip[Boundary](t, m)
		roundTrip[DeadLetter](t, m)
		roundTrip[QuotaAlert](t, m)
		roundTrip[TenantUnlinked](t, m)
	})
}

// FuzzEventRoundTrip builds change events from fuzzed fields: Encode
// either refuses one with an error (an invalid event, or an object that is
// not whole JSON) or writes a message that decodes to the same event.
func FuzzEventRoundTrip(f *testing.F) {
	obj, key := sampleObject(f, pifu.EntityPerson)
	f.Add("id-1", tenant, "exp-42", "person", "updated", key, at.UnixNano(), []byte(obj), []byte(`{"email":null}`))
	f.Add("id-2", tenant, "exp-42", "membership", "created", "g|m|01", int64(0), []byte(`{}`), []byte(nil))
	f.Fuzz(func(t *testing.T, id, ten, export, entity, op, key string, nanos int64, object, previous []byte) {
		ev := Event{ID: id, Tenant: ten, ExportID: export, Entity: pifu.Entity(entity), Op: Op(op), Key: key,
			Time: time.Unix(0, nanos).UTC(), Object: object, Previous: previous}
		m, err := Encode(ev)
		if err != nil {
			if ev.Validate() == nil && json.Valid(ev.Object) && (len(ev.Previous) == 0 || json.Valid(ev.Previous)) &&
				bytes.Equal(bytes.TrimSpace(ev.Object), ev.Object) && bytes.Equal(bytes.TrimSpace(ev.Previous), ev.Previous) {
				t.Fatalf("a valid event did not encode: %v", err)
			}
			return
		}
		got, err := Decode[Event](m)
		if err != nil {
			t.Fatalf("encoded event does not decode: %v\nheaders %v\nbody %q", err, m.Header, m.Data)
		}
		if !got.Time.Equal(ev.Time) {
			t.Fatalf("time %v came back as %v", ev.Time, got.Time)
		}
		got.Time = ev.Time
		if !bytes.Equal(got.Object, ev.Object) || !bytes.Equal(got.Previous, ev.Previous) {
			t.Fatalf("body changed: %q %q -> %q %q", ev.Object, ev.Previous, got.Object, got.Previous)
		}
		got.Object, got.Previous = ev.Object, ev.Previous
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, got)
		}
	})
}

// roundTrip checks the decoding of m as a T (see FuzzDecode).
func roundTrip[T any, P interface {
	*T
	decoder
}](t *testing.T, m *nats.Msg) {
	t.Helper()
	v, err := Decode[T, P](m)
	if err != nil {
		if c := failure.ClassOf(err); c != failure.Permanent || failure.ReasonOf(err) == "" {
			t.Fatalf("%T: refused as %v (reason %q), want permanent: %v", v, c, failure.ReasonOf(err), err)
		}
		return
	}
	c, ok := any(v).(Codable)
	if !ok {
		t.Fatalf("%T is not Codable", v)
	}
	m1, err := Encode(c)
	if err != nil {
		t.Fatalf("%T decoded but does not encode: %v\nvalue %+v", v, err, v)
	}
	v2, err := Decode[T, P](m1)
	if err != nil {
		t.Fatalf("%T: its own encoding does not decode: %v\nheaders %v\nbody %q", v, err, m1.Header, m1.Data)
	}
	m2, err := Encode(any(v2).(Codable))
	if err != nil {
		t.Fatalf("%T: re-decoded value does not encode: %v", v, err)
	}
	if m1.Subject != m2.Subject || !reflect.DeepEqual(m1.Header, m2.Header) || !bytes.Equal(m1.Data, m2.Data) {
		t.Fatalf("%T: encoding is not stable:\n%s %v %q\n%s %v %q", v, m1.Subject, m1.Header, m1.Data, m2.Subject, m2.Header, m2.Data)
	}
}
