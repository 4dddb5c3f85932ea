package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/quota"
)

const tenant = "aa750693-e3ea-441b-93fe-6a71a8371afa"

var at = time.Date(2026, 3, 2, 7, 30, 0, 123456789, time.UTC)

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func samplePerson() *pifu.Person {
	return &pifu.Person{
		SourcedID: pifu.SourcedID{Source: "Flyt Skole", ID: "p-1001"},
		UserIDs:   []pifu.Typed{{Type: "studentID", Value: "1001"}},
		Name:      pifu.Name{Formatted: "Åse Ødegård", Family: "Ødegård", Given: "Åse"},
		Email:     "ase@example.no",
		Tel:       []pifu.Typed{{Type: "3", Value: "+47 99 99 99 99"}},
		ContactPersons: []pifu.ContactLink{{Type: "guardian",
			Person: pifu.SourcedID{Source: "Flyt Skole", ID: "g-1"}}},
	}
}

func sampleObject(t testing.TB, e pifu.Entity) (json.RawMessage, string) {
	switch e {
	case pifu.EntityOrg:
		g := &pifu.Group{SourcedID: pifu.SourcedID{Source: "Flyt Skole", ID: "school-1"},
			Types: []pifu.GroupType{{Scheme: pifu.SchemeOrg, Value: "school", Level: "2"}},
			Short: "FJS", Long: "Fjordvik skole", IDs: []pifu.ExtID{{Type: "organizationNumber", Value: "974123456"}}}
		return mustJSON(t, g), g.SourcedID.Key()
	case pifu.EntityGroup:
		g := &pifu.Group{SourcedID: pifu.SourcedID{Source: "Flyt Skole", ID: "class-5a"},
			Types: []pifu.GroupType{{Scheme: "pifu-ims-go-grp", Value: "basisgruppe"}}, Short: "5A",
			Timeframe:     &pifu.Timeframe{Begin: "2025-08-15", End: "2026-06-20"},
			Relationships: []pifu.Relationship{{Relation: "1", Target: pifu.SourcedID{Source: "Flyt Skole", ID: "school-1"}}}}
		return mustJSON(t, g), g.SourcedID.Key()
	case pifu.EntityPerson:
		p := samplePerson()
		return mustJSON(t, p), p.SourcedID.Key()
	default:
		m := &pifu.Membership{Group: pifu.SourcedID{Source: "Flyt Skole", ID: "class-5a"},
			Member: pifu.SourcedID{Source: "Flyt Skole", ID: "p-1001"}, IDType: "1", RoleType: "01", Status: "1",
			DateTime: "2025-08-15T08:00:00", Incomplete: []string{pifu.IncompletePerson}}
		return mustJSON(t, m), m.Key()
	}
}

func sampleEvent(t testing.TB, e pifu.Entity, op Op) Event {
	obj, key := sampleObject(t, e)
	ev := Event{Tenant: tenant, ExportID: "exp-42", Entity: e, Op: op, Key: key, Time: at, Object: obj}
	if op == OpUpdated {
		ev.Previous = json.RawMessage(`{"recstatus":null}`)
		switch e {
		case pifu.EntityPerson:
			ev.Previous = json.RawMessage(`{"email":"old@example.no"}`)
		case pifu.EntityMembership:
			ev.Previous = json.RawMessage(`{"datetime":null,"incomplete":null}`)
		}
	}
	ev.ID = fmt.Sprintf("%x", sha256.Sum256([]byte(tenant+string(e)+string(op)+key+string(obj))))[:32]
	return ev
}

func TestRoundTrip(t *testing.T) {
	job := ExportJob{JobID: "j-1", Tenant: tenant, Application: "skolebuss-demo", Reason: ReasonSchedule,
		Slot: at.Truncate(time.Hour), RequestedAt: at}
	fetched := FetchedExport{JobID: "j-1", ExportID: "exp-42", Tenant: tenant, Application: "skolebuss-demo",
		Object: tenant + "/exp-42.xml", Size: 1234, SHA256: strings.Repeat("ab", 32), FetchedAt: at,
		APIVersion: "1.4.0", Sunset: "Wed, 01 Jul 2026 00:00:00 GMT"}
	boundary := Boundary{ID: BoundaryID(tenant, "exp-42", PhaseCompleted), Tenant: tenant, ExportID: "exp-42",
		Phase: PhaseCompleted, Time: at, Counts: map[pifu.Entity]Counts{pifu.EntityPerson: {Created: 3, Total: 3}},
		Checksum: "xxh64sum:" + strings.Repeat("0f", 8), Findings: map[string]int{FindingDanglingMembership: 2, FindingGroupMember: 1}}
	failed := &nats.Msg{Subject: "jobs.export." + tenant, Data: []byte(`{"job_id":"j-1"}`),
		Header: nats.Header{HeaderMsgID: {"job.j-1"}, "Authorization": {"Bearer abc"}, "X-Api-Token": {"t"}}}
	dl := NewDeadLetter("fetcher", tenant, failed, failure.Permanentf("invalid_client", "token refused"), 1,
		"4bf92f3577b34da6a3ce929d0e0e4736", at)
	alert := QuotaAlert{Application: "skolebuss-demo", Kind: "threshold", Period: "daily", PeriodKey: "2026-03-02",
		Used: 80, Limit: 100, Threshold: 0.8, At: at}

	check := func(t *testing.T, v Codable, wantSubject string, decode func(*nats.Msg) (any, error), decodeWM func(string) (any, error)) {
		t.Helper()
		m, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != wantSubject {
			t.Errorf("subject %q, want %q", m.Subject, wantSubject)
		}
		for _, h := range []string{HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderMsgID} {
			if m.Header.Get(h) == "" {
				t.Errorf("header %s missing in %v", h, m.Header)
			}
		}
		got, err := decode(m)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("nats round trip:\n got %#v\nwant %#v", got, v)
		}
		topic, wm, err := EncodeWatermill(v)
		if err != nil || topic != wantSubject || wm.UUID != m.Header.Get(HeaderID) ||
			wm.Metadata.Get(HeaderMsgID) != m.Header.Get(HeaderMsgID) {
			t.Fatalf("watermill: topic %q uuid %q metadata %v err %v", topic, wm.UUID, wm.Metadata, err)
		}
		gotWM, err := decodeWM(topic)
		if err != nil {
			t.Fatalf("decode watermill: %v", err)
		}
		if !reflect.DeepEqual(gotWM, v) {
			t.Errorf("watermill round trip:\n got %#v\nwant %#v", gotWM, v)
		}
	}
	t.Run("job", func(t *testing.T) {
		check(t, job, "jobs.export."+tenant,
			func(m *nats.Msg) (any, error) { return Decode[ExportJob](m) },
			func(string) (any, error) { _, wm, _ := EncodeWatermill(job); return DecodeWatermill[ExportJob](wm) })
	})
	t.Run("fetched", func(t *testing.T) {
		check(t, fetched, "exports.fetched."+tenant,
			func(m *nats.Msg) (any, error) { return Decode[FetchedExport](m) },
			func(string) (any, error) {
				_, wm, _ := EncodeWatermill(fetched)
				return DecodeWatermill[FetchedExport](wm)
			})
	})
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			ev := sampleEvent(t, e, op)
			t.Run("event/"+string(e)+"."+string(op), func(t *testing.T) {
				check(t, ev, "lms."+tenant+"."+string(e)+"."+string(op),
					func(m *nats.Msg) (any, error) { return Decode[Event](m) },
					func(string) (any, error) { _, wm, _ := EncodeWatermill(ev); return DecodeWatermill[Event](wm) })
			})
		}
	}
	t.Run("boundary", func(t *testing.T) {
		check(t, boundary, "lms."+tenant+".export.completed",
			func(m *nats.Msg) (any, error) { return Decode[Boundary](m) },
			func(string) (any, error) { _, wm, _ := EncodeWatermill(boundary); return DecodeWatermill[Boundary](wm) })
	})
	t.Run("deadletter", func(t *testing.T) {
		if _, ok := dl.Message.Headers["Authorization"]; ok {
			t.Error("Authorization header kept in the dead letter")
		}
		if _, ok := dl.Message.Headers["X-Api-Token"]; ok {
			t.Error("token header kept in the dead letter")
		}
		if dl.Reason != "invalid_client" || dl.Class != "permanent" || dl.Message.Headers[HeaderMsgID][0] != "job.j-1" {
			t.Errorf("dead letter %+v", dl)
		}
		check(t, dl, "dlq.fetcher."+tenant,
			func(m *nats.Msg) (any, error) { return Decode[DeadLetter](m) },
			func(string) (any, error) { _, wm, _ := EncodeWatermill(dl); return DecodeWatermill[DeadLetter](wm) })
	})
	t.Run("alert", func(t *testing.T) {
		check(t, alert, "alerts.quota.skolebuss-demo",
			func(m *nats.Msg) (any, error) { return Decode[QuotaAlert](m) },
			func(string) (any, error) { _, wm, _ := EncodeWatermill(alert); return DecodeWatermill[QuotaAlert](wm) })
	})
}

func TestDedupKeys(t *testing.T) {
	a := ExportJob{JobID: "j-1", Tenant: tenant, Application: "app", Reason: ReasonSchedule, Slot: at.Truncate(time.Hour), RequestedAt: at}
	b := a
	b.JobID, b.RequestedAt = "j-2", at.Add(time.Second)
	if a.DedupKey() != b.DedupKey() {
		t.Errorf("two requests for one slot: %q != %q", a.DedupKey(), b.DedupKey())
	}
	b.Slot = b.Slot.Add(time.Hour)
	if a.DedupKey() == b.DedupKey() {
		t.Error("two slots share a key")
	}
	d := ExportJob{JobID: "j-3", Tenant: tenant, Application: "app", Reason: ReasonDemand, RequestedAt: at}
	if d.DedupKey() != "job."+tenant+".j-3" {
		t.Errorf("demand key %q", d.DedupKey())
	}
	// The same job id for two tenants: two jobs, two fetched exports.
	other := d
	other.Tenant = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	if d.DedupKey() == other.DedupKey() {
		t.Errorf("two tenants' jobs j-3 share the key %q", d.DedupKey())
	}
	fa := FetchedExport{JobID: "j-3", Tenant: d.Tenant}
	fb := FetchedExport{JobID: "j-3", Tenant: other.Tenant}
	if fa.DedupKey() == fb.DedupKey() {
		t.Errorf("two tenants' fetched exports of job j-3 share the key %q", fa.DedupKey())
	}
	fa.Force = true
	if fa.DedupKey() == (FetchedExport{JobID: "j-3", Tenant: d.Tenant}).DedupKey() {
		t.Error("a forced fetched export has the key of the one it repeats")
	}
}

func TestDecodeRefusesPermanently(t *testing.T) {
	good, err := Encode(sampleEvent(t, pifu.EntityPerson, OpCreated))
	if err != nil {
		t.Fatal(err)
	}
	variant := func(f func(m *nats.Msg)) *nats.Msg {
		m := &nats.Msg{Subject: good.Subject, Header: nats.Header{}, Data: append([]byte(nil), good.Data...)}
		for k, v := range good.Header {
			m.Header[k] = v
		}
		f(m)
		return m
	}
	cases := []struct {
		name, reason string
		msg          *nats.Msg
	}{
		{"no headers", "unknown_message_type", &nats.Msg{Subject: good.Subject, Data: good.Data}},
		{"unknown type", "unknown_message_type", variant(func(m *nats.Msg) { m.Header.Set(HeaderType, "no.skolebuss.pupil.created.v1") })},
		{"foreign type", "unknown_message_type", variant(func(m *nats.Msg) { m.Header.Set(HeaderType, "com.example.person.created.v1") })},
		{"no version", "unknown_message_type", variant(func(m *nats.Msg) { m.Header.Set(HeaderType, "no.skolebuss.person.created") })},
		{"unknown version", "unknown_message_version", variant(func(m *nats.Msg) { m.Header.Set(HeaderType, "no.skolebuss.person.created.v2") })},
		{"spec version", "unknown_message_type", variant(func(m *nats.Msg) { m.Header.Set(HeaderSpecVersion, "0.3") })},
		{"body not JSON", "undecodable_message", variant(func(m *nats.Msg) { m.Data = []byte("<xml/>") })},
		{"body truncated", "undecodable_message", variant(func(m *nats.Msg) { m.Data = m.Data[:len(m.Data)/2] })},
		{"bad time", "undecodable_message", variant(func(m *nats.Msg) { m.Header.Set(HeaderTime, "yesterday") })},
		{"tenant breaks subjects", "invalid_message", variant(func(m *nats.Msg) {
			m.Data = []byte(strings.Replace(string(m.Data), tenant, "a.>", 1))
		})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode[Event](c.msg)
			if !failure.IsPermanent(err) || failure.ReasonOf(err) != c.reason {
				t.Errorf("err %v: class %v reason %q, want permanent %q", err, failure.ClassOf(err), failure.ReasonOf(err), c.reason)
			}
		})
	}
	// A valid message of another type is refused too.
	_, err = Decode[ExportJob](good)
	if !failure.IsPermanent(err) || failure.ReasonOf(err) != "unexpected_message_type" {
		t.Errorf("event decoded as job: %v", err)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	ev := sampleEvent(t, pifu.EntityPerson, OpUpdated)
	ev.Previous = nil
	if _, err := Encode(ev); err == nil {
		t.Error("update without previous encoded")
	}
	ev = sampleEvent(t, pifu.EntityPerson, OpCreated)
	ev.Tenant = "evil.>"
	if _, err := Encode(ev); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("hostile tenant: %v", err)
	}
	b := Boundary{ID: "b", Tenant: tenant, ExportID: "e", Phase: PhaseCompleted, Time: at}
	if _, err := Encode(b); err == nil {
		t.Error("export.completed without checksum encoded")
	}
	b.Checksum = "xxh64sum:" + strings.Repeat("0f", 8)
	for _, f := range []map[string]int{{"dangling-reference": 1}, {FindingGroupMember: 0}, {FindingDanglingMembership: -2}} {
		b.Findings = f
		if _, err := Encode(b); err == nil || !strings.Contains(err.Error(), "findings") {
			t.Errorf("findings %v: %v", f, err)
		}
	}
}

func TestEventBodyJSON(t *testing.T) {
	ev := sampleEvent(t, pifu.EntityPerson, OpUpdated)
	ev.ExportID = "weird \"id\"\\\n\x01\u2028\ufffd"
	m, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	var body eventBody
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatalf("body %q: %v", m.Data, err)
	}
	if body.ExportID != ev.ExportID {
		t.Errorf("export_id %q, want %q", body.ExportID, ev.ExportID)
	}
	// What JSON cannot carry as it is, or a header not at all, is refused
	// rather than sent changed.
	for name, change := range map[string]func(*Event){
		"export_id not UTF-8": func(e *Event) { e.ExportID = "exp\xff" },
		"key with LF":         func(e *Event) { e.Key = "a\nb" },
		"id with CR":          func(e *Event) { e.ID = "a\rb" },
		"key with NUL":        func(e *Event) { e.Key = "a\x00" },
	} {
		bad := sampleEvent(t, pifu.EntityPerson, OpCreated)
		change(&bad)
		if _, err := Encode(bad); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// TestEventsMatchSchemas encodes an event of every type and checks its
// body against the JSON Schema its ce-dataschema names, in docs/schemas.
func TestEventsMatchSchemas(t *testing.T) {
	c := newChecker(t)
	var msgs []*nats.Msg
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			m, err := Encode(sampleEvent(t, e, op))
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, m)
		}
	}
	for _, ph := range []Phase{PhaseStarted, PhaseCompleted} {
		b := Boundary{ID: BoundaryID(tenant, "exp-42", ph), Tenant: tenant, ExportID: "exp-42", Phase: ph, Time: at,
			Counts:   map[pifu.Entity]Counts{pifu.EntityOrg: {Created: 2, Total: 2}, pifu.EntityPerson: {Updated: 1, Unchanged: 9, Total: 10}},
			Checksum: "xxh64sum:" + strings.Repeat("a1", 8)}
		if ph == PhaseStarted {
			b.Upstream = &Upstream{APIVersion: "1.4", Deprecation: "@1798761600", Sunset: "Sat, 01 May 2027 00:00:00 GMT"}
		}
		b.Findings = map[string]int{FindingDanglingMembership: 3, FindingGroupMember: 1}
		m, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		// A resync's boundaries, as a vendor's stream carries them.
		b.Resync, b.Upstream = true, nil
		r, err := Encode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(r.Data, []byte(`"resync":true`)) || bytes.Contains(m.Data, []byte(`"resync"`)) {
			t.Errorf("resync flag: %s / %s", r.Data, m.Data)
		}
		msgs = append(msgs, m, r)
	}
	u, err := Encode(TenantUnlinked{ID: UnlinkedID("roster-only", tenant, "exp-42"), Vendor: "roster-only", Tenant: tenant, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs, u)
	seen := map[string]bool{}
	// The resync request and its reply: not events, but a vendor sends the
	// one and reads the other.
	for file, v := range map[string]any{
		"no.skolebuss.resync.request.v1.json": []ResyncRequest{{}, {Reason: "our copy lost a week: æøå"}},
		"no.skolebuss.resync.reply.v1.json": []ResyncReply{{Accepted: true, ResyncID: "20261207T230000.000Z-0a1b2c3d"},
			{Error: "tenant x is not linked to vendor y"}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var docs []any
		if err := json.Unmarshal(b, &docs); err != nil {
			t.Fatal(err)
		}
		for _, doc := range docs {
			if errs := c.validate(file, doc); len(errs) > 0 {
				t.Errorf("%s: %s", file, strings.Join(errs, "\n  "))
			}
		}
		seen[file] = true
	}
	for _, m := range msgs {
		uri := m.Header.Get(HeaderDataSchema)
		file := path.Base(uri)
		if uri != SchemaBase+m.Header.Get(HeaderType)+".json" {
			t.Errorf("ce-dataschema %q does not name the type %s", uri, m.Header.Get(HeaderType))
		}
		var doc any
		if err := json.Unmarshal(m.Data, &doc); err != nil {
			t.Fatal(err)
		}
		if errs := c.validate(file, doc); len(errs) > 0 {
			t.Errorf("%s: %s\nbody %s", file, strings.Join(errs, "\n  "), m.Data)
		}
		seen[file] = true
	}
	// Every schema in the folder is an event type the code publishes.
	entries, err := os.ReadDir(schemaDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "no.skolebuss.") && !seen[n] {
			t.Errorf("schema %s belongs to no event the code encodes", n)
		}
	}
	if len(seen) != 17 {
		t.Errorf("%d event types and request bodies checked, want 17", len(seen))
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := sampleEvent(b, pifu.EntityPerson, OpUpdated)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// The quota package's alert converts to the message type field by field.
var _ = QuotaAlert(quota.Alert{})

// A quota alert's kinds: a pause and a resumption round-trip with their own
// dedup keys (one per application, period and kind), and an alert written
// before alerts had kinds reads as a threshold.
func TestQuotaAlertKinds(t *testing.T) {
	base := QuotaAlert{Application: "skolebuss-demo", Period: "daily", PeriodKey: "2026-10-25", Used: 10, Limit: 10, At: at}
	keys := map[string]bool{}
	for _, k := range []string{"threshold", "paused", "resumed"} {
		a := base
		a.Kind = k
		if k == "threshold" {
			a.Threshold = 0.8
		}
		if k == "paused" {
			a.Until = at.Add(time.Hour)
		}
		m, err := Encode(a)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != a.DedupKey() || keys[got] {
			t.Errorf("%s: Nats-Msg-Id %q (seen before: %v)", k, got, keys[got])
		}
		keys[m.Header.Get("Nats-Msg-Id")] = true
		back, err := Decode[QuotaAlert](m)
		if err != nil || back.Kind != k || !back.Until.Equal(a.Until) {
			t.Errorf("%s: read back %+v, %v", k, back, err)
		}
	}
	if keys["quota-skolebuss-demo-daily-2026-10-25-paused"] != true {
		t.Errorf("keys %v", keys)
	}
	old := base
	old.Kind, old.Threshold = "threshold", 0.8
	m, _ := Encode(old)
	m.Data = []byte(strings.Replace(string(m.Data), `"kind":"threshold",`, "", 1))
	if back, err := Decode[QuotaAlert](m); err != nil || back.Kind != "threshold" {
		t.Errorf("an alert without a kind: %+v, %v", back, err)
	}
	bad := base
	bad.Kind = "exploded"
	if _, err := Encode(bad); err == nil {
		t.Error("an alert of an unknown kind was encoded")
	}
}
