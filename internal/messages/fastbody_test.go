package messages

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// generatedBodies are the bodies of change events of a small generated
// municipality's first export, as Encode writes them, some with a
// previous.
func generatedBodies(t testing.TB) [][]byte {
	t.Helper()
	sizes, err := rostergen.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Fjordvik kommune", Seed: 7, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := m.WriteExport(context.Background(), &doc, 1); err != nil {
		t.Fatal(err)
	}
	d := pifu.NewDecoder(&doc)
	var out [][]byte
	for i := 0; ; i++ {
		r, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		obj, err := json.Marshal(r.Object())
		if err != nil {
			t.Fatal(err)
		}
		ev := Event{Tenant: tenant, ExportID: "exp-42", Object: obj}
		if i%3 == 0 {
			ev.Previous = json.RawMessage(`{"recstatus":null,"short":"5A \u00e6\u00f8\u00e5"}`)
		}
		out = append(out, ev.appendBody(nil))
	}
}

// FuzzFastEventBody compares the reflection-free reader of event bodies
// with encoding/json on the same bytes: whatever the fast reader accepts,
// encoding/json decodes without error to the same values.
func FuzzFastEventBody(f *testing.F) {
	for _, b := range generatedBodies(f) {
		f.Add(b)
	}
	for _, m := range fuzzSeeds(f) {
		f.Add(m.Data)
	}
	for _, s := range []string{
		`{"tenant":"t","export_id":"e","object":{"a":[1,-2.5e+3,true,false,null,"\u00e6\"\\\/"]}}`,
		`{"tenant":"t","export_id":"e","object":{},"previous":{"x":null}}`,
		`{"tenant":"t","export_id":"e","object":{"a":01}}`,
		`{"tenant":"t","export_id":"e","object":{"a":"\x"}}`,
		`{"tenant":"t\u0041","export_id":"e","object":{}}`,
		"{\"tenant\":\"\xff\",\"export_id\":\"e\",\"object\":{}}",
		`{"tenant":"t","export_id":"e","object":{"a":1},}`,
		`{"tenant":"t","export_id":"e","object":{"a" : [ 1 , 2 ] }}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast eventBody
		if !fastEventBody(data, &fast) {
			return
		}
		var slow eventBody
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast reader accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast reader and encoding/json differ on %q:\n%+v\n%+v", data, fast, slow)
		}
	})
}

// TestFastEventBodyReadsGenerated checks that the fast reader takes every
// body the publisher writes (no event of an export falls back to
// reflection), and refuses forms it does not know.
func TestFastEventBodyReadsGenerated(t *testing.T) {
	bodies := generatedBodies(t)
	for _, b := range bodies {
		var body eventBody
		if !fastEventBody(b, &body) {
			t.Fatalf("not read fast: %q", b)
		}
	}
	for _, s := range []string{
		`{"export_id":"e","tenant":"t","object":{}}`,
		`{"tenant":"t","export_id":"e","object":{"a":01}}`,
		`{"tenant":"t","export_id":"e","object":{"a":"\x"}}`,
		`{"tenant":"t","export_id":"e","object":{"a":[1,]}}`,
		`{"tenant":"t","export_id":"e","object":{}} `,
		`{"tenant":"t","export_id":"e","object":{},"previous":null}`,
	} {
		var body eventBody
		if fastEventBody([]byte(s), &body) {
			t.Errorf("read fast, want the general way: %s", s)
		}
	}
	if len(bodies) < 20 {
		t.Fatalf("only %d generated bodies", len(bodies))
	}
}

// BenchmarkDecodeEvent decodes the change events of a generated export,
// headers and body, as the fan-out does (message), the body alone read by
// hand (body), and by encoding/json for comparison.
func BenchmarkDecodeEvent(b *testing.B) {
	var msgs []*nats.Msg
	for i, body := range generatedBodies(b) {
		ev := sampleEvent(b, pifu.EntityPerson, OpCreated)
		var eb eventBody
		if err := json.Unmarshal(body, &eb); err != nil {
			b.Fatal(err)
		}
		ev.Object = eb.Object
		if i%3 == 0 {
			ev.Op, ev.Previous = OpUpdated, eb.Previous
		}
		m, err := Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	b.Run("message", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := Decode[Event](msgs[i%len(msgs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("body", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var body eventBody
			if !fastEventBody(msgs[i%len(msgs)].Data, &body) {
				b.Fatal("not read fast")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			var body eventBody
			if err := decodeJSON("t", msgs[i%len(msgs)].Data, &body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
