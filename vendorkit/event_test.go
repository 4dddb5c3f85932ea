package vendorkit_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/vendorkit"
)

func encodeFor(t *testing.T, ev messages.Event) *nats.Msg {
	t.Helper()
	m, err := messages.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	m.Subject, _ = messages.VendorEventSubject(vendor, ev.Tenant, ev.Entity, ev.Op)
	return m
}

// TestDecodeChange decodes change events as skolebuss encodes them, with
// objects a brace-counting reader could get wrong, and bodies of other
// forms (which take the general path): each gives the event encoded.
func TestDecodeChange(t *testing.T) {
	at := time.Date(2026, 9, 1, 6, 0, 0, 123, time.UTC)
	base := messages.Event{ID: "id1", Tenant: tenantA, ExportID: "e1", Entity: pifu.EntityPerson, Op: messages.OpCreated,
		Key: "p1", Time: at}
	for _, obj := range []string{
		`{"a":1}`,
		`{"name":"a } brace","x":{"y":[1,{"z":"]"}]}}`,
		`{"q":"a \" quote and \\ backslash }"}`,
		`{"u":"\u00e6\u00f8\u00e5 ÆØÅ"}`,
	} {
		ev := base
		ev.Object = json.RawMessage(obj)
		for _, op := range []messages.Op{messages.OpCreated, messages.OpUpdated, messages.OpDeleted} {
			ev.Op = op
			ev.Previous = nil
			if op == messages.OpUpdated {
				ev.Previous = json.RawMessage(`{"name":"b } \"x\""}`)
			}
			m := encodeFor(t, ev)
			got := vendorkit.Decode(vendor, 7, m)
			if got.Kind != vendorkit.KindChange || got.Err != nil {
				t.Fatalf("%s %s: %+v", op, obj, got)
			}
			c := got.Change
			if got.Seq != 7 || got.Tenant != tenantA || got.ID != "id1" || !got.Time.Equal(at) || c.ExportID != "e1" ||
				c.Entity != "person" || c.Op != string(op) || c.Key != "p1" || !bytes.Equal(c.Object, ev.Object) ||
				!bytes.Equal(c.Previous, ev.Previous) || c.Mix != vendorkit.RecordMix("person", "p1", ev.Object) {
				t.Errorf("%s %s: %+v %+v", op, obj, got, c)
			}
			// The same body with white space the fast path does not read.
			m.Data = bytes.Replace(m.Data, []byte(`{"tenant":`), []byte(`{ "tenant": `), 1)
			if again := vendorkit.Decode(vendor, 7, m); again.Kind != vendorkit.KindChange || !bytes.Equal(again.Change.Object, ev.Object) {
				t.Errorf("%s %s with white space: %+v", op, obj, again)
			}
		}
	}

	for name, mutate := range map[string]func(m *nats.Msg){
		"another tenant in the body": func(m *nats.Msg) {
			m.Data = bytes.Replace(m.Data, []byte(tenantA), []byte("other"), 1)
		},
		"a body cut short":    func(m *nats.Msg) { m.Data = m.Data[:len(m.Data)-3] },
		"another vendor":      func(m *nats.Msg) { m.Subject = "vendor.other" + m.Subject[len("vendor."+vendor):] },
		"a newer major type":  func(m *nats.Msg) { m.Header.Set(messages.HeaderType, "no.skolebuss.person.created.v2") },
		"an unknown subject":  func(m *nats.Msg) { m.Subject = "vendor." + vendor + "." + tenantA + ".course.created" },
		"no time":             func(m *nats.Msg) { m.Header.Del(messages.HeaderTime) },
		"the subject's op":    func(m *nats.Msg) { m.Subject = m.Subject[:len(m.Subject)-len("created")] + "deleted" },
		"trailing characters": func(m *nats.Msg) { m.Data = append(m.Data, 'x') },
	} {
		ev := base
		ev.Object = json.RawMessage(`{"a":1}`)
		m := encodeFor(t, ev)
		mutate(m)
		if got := vendorkit.Decode(vendor, 1, m); got.Kind != vendorkit.KindUnknown || got.Err == nil {
			t.Errorf("%s: %+v, want KindUnknown with an error", name, got)
		}
	}
}

func TestDecodeBoundary(t *testing.T) {
	b := messages.Boundary{ID: "b1", Tenant: tenantA, ExportID: "e1", Phase: messages.PhaseCompleted, Time: time.Now(),
		Counts: map[pifu.Entity]messages.Counts{pifu.EntityPerson: {Created: 2, Total: 5}}, Checksum: "xxh64sum:00000000000000ff"}
	m, err := messages.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	m.Subject, _ = messages.VendorBoundarySubject(vendor, tenantA, messages.PhaseCompleted)
	m.Data = append(m.Data[:len(m.Data)-1], `,"resync":true,"findings":{"dangling-membership":3}}`...)
	got := vendorkit.Decode(vendor, 9, m)
	if got.Kind != vendorkit.KindExportCompleted || got.Boundary == nil {
		t.Fatalf("%+v", got)
	}
	bd := got.Boundary
	if !bd.Resync || bd.Findings["dangling-membership"] != 3 || bd.Counts["person"].Total != 5 || bd.Checksum != b.Checksum || bd.ExportID != "e1" {
		t.Errorf("%+v", bd)
	}
	sum, err := vendorkit.ParseChecksum(bd.Checksum)
	if err != nil || sum != 0xff || sum.String() != bd.Checksum {
		t.Errorf("ParseChecksum: %v %v", sum, err)
	}
}

// FuzzDecodeChange checks the kit's reading of a change event against the
// general decoder of internal/messages, for objects with any strings in
// them: go test -fuzz=FuzzDecodeChange ./vendorkit/
func FuzzDecodeChange(f *testing.F) {
	for _, s := range []string{"", "}", `"`, `\`, "{[", "æøå", "\x00", `\"}`} {
		f.Add(s, s+"x", true)
	}
	f.Fuzz(func(t *testing.T, a, b string, update bool) {
		obj, _ := json.Marshal(map[string]any{"a": a, "n": []any{b, map[string]string{b: a}}})
		ev := messages.Event{ID: "id", Tenant: tenantA, ExportID: "e", Entity: pifu.EntityGroup, Op: messages.OpCreated,
			Key: "k", Time: time.Unix(1, 0), Object: obj}
		if update {
			ev.Op = messages.OpUpdated
			ev.Previous, _ = json.Marshal(map[string]string{"a": b})
		}
		m := encodeFor(t, ev)
		want, err := messages.Decode[messages.Event](m)
		if err != nil {
			t.Fatal(err)
		}
		got := vendorkit.Decode(vendor, 1, m)
		if got.Kind != vendorkit.KindChange {
			t.Fatalf("%+v", got)
		}
		if !bytes.Equal(got.Change.Object, want.Object) || !bytes.Equal(got.Change.Previous, want.Previous) ||
			got.Change.Key != want.Key || got.Change.ExportID != want.ExportID || !got.Time.Equal(want.Time) {
			t.Errorf("kit %+v, general %+v", got.Change, want)
		}
	})
}
