package messages

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

var traceHeader = nats.Header{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}

// encodeWithExtra is what the publisher did before the EventEncoder: Encode,
// then the extra headers set over it.
func encodeWithExtra(t testing.TB, ev Event, extra nats.Header) *nats.Msg {
	t.Helper()
	m, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range extra {
		m.Header[k] = v
	}
	return m
}

func TestEventEncoderMatchesEncode(t *testing.T) {
	odd := json.RawMessage(`{"sourcedid":{"source":"a\"b","id":"<x>&\u2028"},"name":{"fn":"Å","family":"","given":""}}`)
	for _, extra := range []nats.Header{nil, traceHeader,
		{HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "tracestate": {"a=1", "b=2"}}} {
		for _, exportID := range []string{"exp-42", "export \"with\" <odd> chars\n\u00e5"} {
			tm := at.In(time.FixedZone("CET", 3600))
			x, err := NewEventEncoder(tenant, exportID, tm, extra)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range pifu.Entities {
				for _, op := range Ops {
					evs := []Event{sampleEvent(t, e, op)}
					o := sampleEvent(t, e, op)
					o.Object, o.Key = odd, "a b/ø|01"
					evs = append(evs, o)
					for _, ev := range evs {
						ev.ExportID, ev.Time = exportID, tm
						want := encodeWithExtra(t, ev, extra)
						got, err := x.Encode(ev)
						if err != nil {
							t.Fatalf("%s %s: %v", e, op, err)
						}
						if got.Subject != want.Subject {
							t.Errorf("%s %s: subject %q, want %q", e, op, got.Subject, want.Subject)
						}
						if !reflect.DeepEqual(got.Header, want.Header) {
							t.Errorf("%s %s: header\n%v\nwant\n%v", e, op, got.Header, want.Header)
						}
						if !bytes.Equal(got.Data, want.Data) {
							t.Errorf("%s %s: body\n%s\nwant\n%s", e, op, got.Data, want.Data)
						}
						back, err := Decode[Event](got)
						if err != nil {
							t.Fatalf("%s %s: decode: %v", e, op, err)
						}
						if back.ID != ev.ID || back.Key != ev.Key || !back.Time.Equal(ev.Time) || !bytes.Equal(back.Object, ev.Object) {
							t.Errorf("%s %s: decoded %+v, want %+v", e, op, back, ev)
						}
					}
				}
			}
		}
	}
}

func TestEventEncoderRefusesWhatEncodeRefuses(t *testing.T) {
	x, err := NewEventEncoder(tenant, "exp-42", at, traceHeader)
	if err != nil {
		t.Fatal(err)
	}
	good := sampleEvent(t, pifu.EntityPerson, OpUpdated)
	for name, mod := range map[string]func(*Event){
		"no id":                   func(e *Event) { e.ID = "" },
		"unknown entity":          func(e *Event) { e.Entity = "pupil" },
		"unknown op":              func(e *Event) { e.Op = "moved" },
		"no key":                  func(e *Event) { e.Key = "" },
		"object not object":       func(e *Event) { e.Object = json.RawMessage(`[1]`) },
		"update without previous": func(e *Event) { e.Previous = nil },
		"previous on create":      func(e *Event) { e.Op = OpCreated },
		"other tenant":            func(e *Event) { e.Tenant = "bb750693-e3ea-441b-93fe-6a71a8371afa" },
		"other export":            func(e *Event) { e.ExportID = "exp-43" },
		"other time":              func(e *Event) { e.Time = at.Add(time.Second) },
	} {
		ev := good
		mod(&ev)
		if m, err := x.Encode(ev); err == nil {
			t.Errorf("%s: encoded %v", name, m)
		}
	}
	if _, err := x.Encode(good); err != nil {
		t.Errorf("the good event: %v", err)
	}
	for name, f := range map[string]func() error{
		"bad tenant": func() error { _, err := NewEventEncoder("a.b", "e", at, nil); return err },
		"no export":  func() error { _, err := NewEventEncoder(tenant, "", at, nil); return err },
		"no time":    func() error { _, err := NewEventEncoder(tenant, "e", time.Time{}, nil); return err },
	} {
		if f() == nil {
			t.Errorf("NewEventEncoder with a %s: no error", name)
		}
	}
}

// The messages of one encoder share constant header values: changing one
// message's headers through nats.Header's methods leaves the others alone.
func TestEventEncoderMessagesAreIndependent(t *testing.T) {
	x, err := NewEventEncoder(tenant, "exp-42", at, traceHeader)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := x.Encode(sampleEvent(t, pifu.EntityPerson, OpCreated))
	b, _ := x.Encode(sampleEvent(t, pifu.EntityGroup, OpCreated))
	want := nats.Header{}
	for k, v := range b.Header {
		want[k] = append([]string(nil), v...)
	}
	a.Header.Add(HeaderSpecVersion, "2.0")
	a.Header.Add(HeaderTraceparent, "x")
	a.Header.Add(HeaderID, "y")
	a.Header.Set(HeaderSource, "z")
	if !reflect.DeepEqual(b.Header, want) {
		t.Errorf("another message's headers changed:\n%v\nwant\n%v", b.Header, want)
	}
	if got := a.Header.Get(HeaderMsgID); got != sampleEvent(t, pifu.EntityPerson, OpCreated).ID {
		t.Errorf("Nats-Msg-Id %q changed with ce-id", got)
	}
	if v := traceHeader[HeaderTraceparent]; len(v) != 1 { // copied, not kept
		t.Errorf("the caller's extra header changed: %v", v)
	}
}

func BenchmarkEventEncoder(b *testing.B) {
	ev := sampleEvent(b, pifu.EntityPerson, OpUpdated)
	x, err := NewEventEncoder(tenant, ev.ExportID, ev.Time, traceHeader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Encode(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// A message filled by EncodeTo and filled again holds exactly what a new
// message would, whatever the entity, op and sizes before; a message from
// elsewhere is not written into.
func TestEventEncoderReusesItsMessages(t *testing.T) {
	x, err := NewEventEncoder(tenant, "exp-42", at, traceHeader)
	if err != nil {
		t.Fatal(err)
	}
	m := new(nats.Msg)
	var evs []Event
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			evs = append(evs, sampleEvent(t, e, op))
		}
	}
	for i := range 3 * len(evs) {
		ev := evs[(i*7)%len(evs)]
		if err := x.EncodeTo(m, ev); err != nil {
			t.Fatal(err)
		}
		want := encodeWithExtra(t, ev, traceHeader)
		if m.Subject != want.Subject || !reflect.DeepEqual(m.Header, want.Header) || !bytes.Equal(m.Data, want.Data) {
			t.Fatalf("event %d (%s %s) reused: %s %v %s\nwant %s %v %s", i, ev.Entity, ev.Op,
				m.Subject, m.Header, m.Data, want.Subject, want.Header, want.Data)
		}
	}
	if testing.AllocsPerRun(100, func() { _ = x.EncodeTo(m, evs[0]) }) != 0 {
		t.Error("EncodeTo into its own message allocates")
	}
	foreign := encodeWithExtra(t, evs[1], traceHeader)
	keep := foreign.Header[HeaderID]
	if err := x.EncodeTo(foreign, evs[2]); err != nil {
		t.Fatal(err)
	}
	if keep[0] != evs[1].ID {
		t.Errorf("EncodeTo wrote into the header values of a message it did not fill")
	}
	if foreign.Header.Get(HeaderID) != evs[2].ID {
		t.Errorf("ce-id %s, want %s", foreign.Header.Get(HeaderID), evs[2].ID)
	}
	bad := evs[3]
	bad.ID = ""
	before := m.Header.Get(HeaderID)
	if err := x.EncodeTo(m, bad); err == nil || m.Header.Get(HeaderID) != before {
		t.Errorf("a refused event: err %v, ce-id %s (was %s)", err, m.Header.Get(HeaderID), before)
	}
}

func BenchmarkEventEncoderReuse(b *testing.B) {
	ev := sampleEvent(b, pifu.EntityPerson, OpUpdated)
	x, err := NewEventEncoder(tenant, ev.ExportID, ev.Time, traceHeader)
	if err != nil {
		b.Fatal(err)
	}
	m := new(nats.Msg)
	b.ReportAllocs()
	for b.Loop() {
		if err := x.EncodeTo(m, ev); err != nil {
			b.Fatal(err)
		}
	}
}
