package messages_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// asyncAPIFile is the AsyncAPI document of the vendor-facing subjects.
var asyncAPIFile = filepath.Join("..", "..", "docs", "asyncapi.yaml")

// schemaDirPath is where the payload $refs of the document point.
var schemaDirPath = filepath.Join("..", "..", "docs", "schemas")

// sampleTenant and sampleVendor stand for the {tenant} and {vendor}
// parameters of the channel addresses.
const (
	sampleTenant = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	sampleVendor = "roster-only"
)

// The parts of an AsyncAPI 3.0 document the checks read.
type (
	asyncDoc struct {
		AsyncAPI   string                  `yaml:"asyncapi"`
		Servers    map[string]asyncServer  `yaml:"servers"`
		Channels   map[string]asyncChannel `yaml:"channels"`
		Operations map[string]asyncOp      `yaml:"operations"`
		Components struct {
			Parameters map[string]asyncParam   `yaml:"parameters"`
			Schemas    map[string]headerSchema `yaml:"schemas"`
			Messages   map[string]asyncMessage `yaml:"messages"`
		} `yaml:"components"`
	}
	asyncRef struct {
		Ref string `yaml:"$ref"`
	}
	asyncServer struct {
		Protocol string `yaml:"protocol"`
	}
	asyncChannel struct {
		Address    string              `yaml:"address"`
		Parameters map[string]asyncRef `yaml:"parameters"`
		Messages   map[string]asyncRef `yaml:"messages"`
	}
	asyncOp struct {
		Action   string     `yaml:"action"`
		Channel  asyncRef   `yaml:"channel"`
		Messages []asyncRef `yaml:"messages"`
		Reply    *struct {
			Channel  asyncRef   `yaml:"channel"`
			Messages []asyncRef `yaml:"messages"`
		} `yaml:"reply"`
	}
	asyncParam struct {
		Description string   `yaml:"description"`
		Examples    []string `yaml:"examples"`
		Location    string   `yaml:"location"`
	}
	asyncMessage struct {
		Name        string       `yaml:"name"`
		ContentType string       `yaml:"contentType"`
		Headers     headerSchema `yaml:"headers"`
		Payload     asyncRef     `yaml:"payload"`
	}
	headerSchema struct {
		Ref        string                    `yaml:"$ref"`
		AllOf      []headerSchema            `yaml:"allOf"`
		Required   []string                  `yaml:"required"`
		Properties map[string]headerProperty `yaml:"properties"`
	}
	headerProperty struct {
		Const   *string `yaml:"const"`
		Pattern string  `yaml:"pattern"`
	}
)

// headerRules are a message's headers with its allOf and $refs resolved:
// the declared headers with every const and pattern that applies to each,
// and the required ones.
type headerRules struct {
	consts   map[string][]string
	patterns map[string][]string
	declared map[string]bool
	required []string
}

func loadAsyncAPI(t *testing.T) *asyncDoc {
	t.Helper()
	b, err := os.ReadFile(asyncAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var d asyncDoc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", asyncAPIFile, err)
	}
	return &d
}

// component returns the name under prefix of a local $ref.
func component(ref, prefix string) (string, bool) {
	return strings.CutPrefix(ref, prefix)
}

func (d *asyncDoc) resolveHeaders(s headerSchema, r *headerRules, depth int) error {
	if depth > 8 {
		return fmt.Errorf("headers: $ref loop")
	}
	if s.Ref != "" {
		name, ok := component(s.Ref, "#/components/schemas/")
		target, found := d.Components.Schemas[name]
		if !ok || !found {
			return fmt.Errorf("headers: $ref %q does not resolve", s.Ref)
		}
		return d.resolveHeaders(target, r, depth+1)
	}
	for _, sub := range s.AllOf {
		if err := d.resolveHeaders(sub, r, depth+1); err != nil {
			return err
		}
	}
	r.required = append(r.required, s.Required...)
	for k, p := range s.Properties {
		r.declared[k] = true
		if p.Const != nil {
			r.consts[k] = append(r.consts[k], *p.Const)
		}
		if p.Pattern != "" {
			r.patterns[k] = append(r.patterns[k], p.Pattern)
		}
	}
	return nil
}

// lmsType is one vendor-facing message type the code produces: its
// ce-type, its subject for sampleTenant (and sampleVendor, on a vendor's
// own stream only), and real encoded messages of it.
type lmsType struct {
	ceType  string
	subject string
	vendor  bool // the address has a {vendor} parameter
	msgs    []*nats.Msg
}

// traceHeader is the trace context the publisher adds to every message of an
// export (publisher.traceHeader), here of a sampled span with a trace state.
func traceHeader(t *testing.T) nats.Header {
	t.Helper()
	ts, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
	m := &nats.Msg{}
	telemetry.InjectNATS(trace.ContextWithSpanContext(context.Background(), sc), m)
	if len(m.Header) == 0 {
		t.Fatal("no trace headers injected")
	}
	return m.Header
}

// producedTypes is every vendor-facing type the code can produce: each
// entity with each op, and both export boundaries, each encoded as the
// publisher encodes it (Encode and EventEncoder, with and without the trace
// context); and tenant.unlinked, which only a vendor's stream holds.
func producedTypes(t *testing.T) []lmsType {
	t.Helper()
	at := time.Date(2026, 3, 2, 7, 30, 5, 123000000, time.UTC)
	const exportID = "20260302T073000Z-3f2a"
	th := traceHeader(t)
	enc, err := messages.NewEventEncoder(sampleTenant, exportID, at, th)
	if err != nil {
		t.Fatal(err)
	}
	withTrace := func(m *nats.Msg) *nats.Msg {
		for k, v := range th {
			m.Header[k] = v
		}
		return m
	}
	var out []lmsType
	for _, e := range pifu.Entities {
		for _, op := range messages.Ops {
			ev := messages.Event{ID: "9f2c1d7e5a3b48c0a1e6f0d2b7c4e8a1", Tenant: sampleTenant, ExportID: exportID,
				Entity: e, Op: op, Key: "FlytSkole/x-1", Time: at, Object: json.RawMessage(`{"sourcedid":{"source":"FlytSkole","id":"x-1"}}`)}
			if op == messages.OpUpdated {
				ev.Previous = json.RawMessage(`{"email":null}`)
			}
			plain, err := messages.Encode(ev)
			if err != nil {
				t.Fatalf("encode %s %s: %v", e, op, err)
			}
			traced, err := enc.Encode(ev)
			if err != nil {
				t.Fatalf("encode %s %s with the export's encoder: %v", e, op, err)
			}
			subj, err := messages.EventSubject(sampleTenant, e, op)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, lmsType{ceType: messages.EventType(e, op), subject: subj, msgs: []*nats.Msg{plain, traced}})
		}
	}
	for _, p := range []messages.Phase{messages.PhaseStarted, messages.PhaseCompleted} {
		b := messages.Boundary{ID: messages.BoundaryID(sampleTenant, exportID, p), Tenant: sampleTenant, ExportID: exportID,
			Phase: p, Time: at, Counts: map[pifu.Entity]messages.Counts{pifu.EntityPerson: {Created: 1, Total: 1}}}
		if p == messages.PhaseCompleted {
			b.Checksum = "xxh64sum:0123456789abcdef"
		}
		plain, err := messages.Encode(b)
		if err != nil {
			t.Fatalf("encode export.%s: %v", p, err)
		}
		traced, err := messages.Encode(b)
		if err != nil {
			t.Fatalf("encode export.%s: %v", p, err)
		}
		subj, err := messages.BoundarySubject(sampleTenant, p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lmsType{ceType: b.Type(), subject: subj, msgs: []*nats.Msg{plain, withTrace(traced)}})
	}
	u, err := messages.Encode(messages.TenantUnlinked{ID: messages.UnlinkedID(sampleVendor, sampleTenant, exportID),
		Vendor: sampleVendor, Tenant: sampleTenant, Time: at})
	if err != nil {
		t.Fatalf("encode tenant.unlinked: %v", err)
	}
	subj, err := messages.VendorUnlinkedSubject(sampleVendor, sampleTenant)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, lmsType{ceType: messages.TypeTenantUnlinked, subject: subj, vendor: true, msgs: []*nats.Msg{u}})
	return out
}

// checkAsyncAPI compares the document with what the code produces and
// returns every difference.
func checkAsyncAPI(d *asyncDoc, types []lmsType, schemaDir string) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	if d.AsyncAPI != "3.0.0" {
		bad("asyncapi is %q, want 3.0.0", d.AsyncAPI)
	}
	if len(d.Servers) == 0 {
		bad("no server")
	}
	for name, s := range d.Servers {
		if s.Protocol != "nats" {
			bad("server %s: protocol %q, want nats", name, s.Protocol)
		}
	}
	tenant, ok := d.Components.Parameters["tenant"]
	if !ok {
		bad("components.parameters has no tenant")
	}
	for _, ex := range tenant.Examples {
		if err := messages.ValidateTenant(ex); err != nil {
			bad("tenant parameter example: %v", err)
		}
	}
	if vendor, ok := d.Components.Parameters["vendor"]; ok {
		for _, ex := range vendor.Examples {
			if err := messages.ValidateVendor(ex); err != nil {
				bad("vendor parameter example: %v", err)
			}
		}
	}

	// Channels by the ce-type of their message.
	byType := map[string][]string{}
	usedMsgs := map[string]bool{}
	requestChannels := map[string]bool{} // the resync request's and reply's: checked by checkResync
	for name, ch := range d.Channels {
		if len(ch.Messages) != 1 {
			bad("channel %s: %d messages, want 1", name, len(ch.Messages))
		}
		for _, ref := range ch.Messages {
			mname, _ := component(ref.Ref, "#/components/messages/")
			m, ok := d.Components.Messages[mname]
			if !ok {
				bad("channel %s: message $ref %q does not resolve", name, ref.Ref)
				continue
			}
			usedMsgs[mname] = true
			if m.Payload.Ref == "./schemas/"+resyncRequestSchema || m.Payload.Ref == "./schemas/"+resyncReplySchema {
				requestChannels[name] = true
				continue
			}
			byType[m.Name] = append(byType[m.Name], name)
		}
	}
	for name := range d.Components.Messages {
		if !usedMsgs[name] {
			bad("message %s is on no channel", name)
		}
	}
	want := map[string]lmsType{}
	for _, ty := range types {
		want[ty.ceType] = ty
	}
	for typ, chans := range byType {
		if _, ok := want[typ]; !ok {
			bad("channels %v carry %s, a type the code does not produce", chans, typ)
		}
	}

	sentBy := map[string]bool{}
	received := 0
	for name, op := range d.Operations {
		cname, _ := component(op.Channel.Ref, "#/channels/")
		if _, ok := d.Channels[cname]; !ok {
			bad("operation %s: channel $ref %q does not resolve", name, op.Channel.Ref)
		}
		if op.Action == "receive" && requestChannels[cname] {
			received++
			probs = append(probs, checkResync(d, name, op, schemaDir)...)
			continue
		}
		if op.Action != "send" {
			bad("operation %s: action %q, want send (skolebuss publishes)", name, op.Action)
		}
		sentBy[cname] = true
	}

	if received != 1 {
		bad("%d operations receive the resync request, want 1", received)
	}
	for _, ty := range types {
		chans := byType[ty.ceType]
		if len(chans) != 1 {
			bad("%s: %d channels carry it, want 1", ty.ceType, len(chans))
			continue
		}
		cname := chans[0]
		ch := d.Channels[cname]
		if !sentBy[cname] {
			bad("channel %s: no operation sends on it", cname)
		}
		// The address, with the parameter substituted, is the code's subject.
		if p, ok := ch.Parameters["tenant"]; !ok || p.Ref != "#/components/parameters/tenant" {
			bad("channel %s: parameter tenant is not #/components/parameters/tenant", cname)
		}
		switch p, ok := ch.Parameters["vendor"]; {
		case ty.vendor && (!ok || p.Ref != "#/components/parameters/vendor"):
			bad("channel %s: parameter vendor is not #/components/parameters/vendor", cname)
		case ty.vendor && len(ch.Parameters) != 2:
			bad("channel %s: %d parameters, want vendor and tenant", cname, len(ch.Parameters))
		case !ty.vendor && len(ch.Parameters) != 1:
			bad("channel %s: %d parameters, want tenant only", cname, len(ch.Parameters))
		}
		addr := strings.ReplaceAll(ch.Address, "{tenant}", sampleTenant)
		if ty.vendor {
			addr = strings.ReplaceAll(addr, "{vendor}", sampleVendor)
		}
		if got := addr; got != ty.subject {
			bad("channel %s: address %q gives %q, the code publishes %s on %q", cname, ch.Address, got, ty.ceType, ty.subject)
		}
		var m asyncMessage
		for _, ref := range ch.Messages {
			mname, _ := component(ref.Ref, "#/components/messages/")
			m = d.Components.Messages[mname]
		}
		if m.ContentType != messages.ContentJSON {
			bad("message %s: contentType %q, want %s", ty.ceType, m.ContentType, messages.ContentJSON)
		}
		probs = append(probs, checkPayload(ty.ceType, m.Payload.Ref, schemaDir)...)
		probs = append(probs, checkHeaders(d, ty, m.Headers)...)
	}
	return probs
}

// The schemas of the resync request and its reply.
const (
	resyncRequestSchema = "no.skolebuss.resync.request.v1.json"
	resyncReplySchema   = "no.skolebuss.resync.reply.v1.json"
)

// checkResync checks the operation op that receives the resync request:
// its channel's address is the code's request subject, with the vendor and
// tenant parameters, and its message the request schema; its reply is on a
// channel without an address (the request's reply subject) with the reply
// schema.
func checkResync(d *asyncDoc, name string, op asyncOp, schemaDir string) []string {
	var probs []string
	bad := func(format string, args ...any) {
		probs = append(probs, "operation "+name+": "+fmt.Sprintf(format, args...))
	}
	payload := func(ch asyncChannel) string {
		for _, ref := range ch.Messages {
			mname, _ := component(ref.Ref, "#/components/messages/")
			m := d.Components.Messages[mname]
			if m.ContentType != messages.ContentJSON {
				bad("message %s: contentType %q, want %s", mname, m.ContentType, messages.ContentJSON)
			}
			return m.Payload.Ref
		}
		return ""
	}
	cname, _ := component(op.Channel.Ref, "#/channels/")
	ch := d.Channels[cname]
	want, err := messages.ResyncRequestSubject(sampleVendor, sampleTenant)
	if err != nil {
		return []string{err.Error()}
	}
	addr := strings.ReplaceAll(strings.ReplaceAll(ch.Address, "{vendor}", sampleVendor), "{tenant}", sampleTenant)
	if addr != want {
		bad("channel %s: address %q gives %q, the fan-out answers on %q", cname, ch.Address, addr, want)
	}
	if ch.Parameters["vendor"].Ref != "#/components/parameters/vendor" || ch.Parameters["tenant"].Ref != "#/components/parameters/tenant" {
		bad("channel %s: parameters vendor and tenant are not the components'", cname)
	}
	if got := payload(ch); got != "./schemas/"+resyncRequestSchema {
		bad("request payload %q, want ./schemas/%s", got, resyncRequestSchema)
	}
	if op.Reply == nil {
		bad("no reply")
		return probs
	}
	rname, _ := component(op.Reply.Channel.Ref, "#/channels/")
	rch, ok := d.Channels[rname]
	switch {
	case !ok:
		bad("reply channel $ref %q does not resolve", op.Reply.Channel.Ref)
	case rch.Address != "":
		bad("reply channel %s has the address %q: the reply goes to the request's reply subject", rname, rch.Address)
	}
	if got := payload(rch); got != "./schemas/"+resyncReplySchema {
		bad("reply payload %q, want ./schemas/%s", got, resyncReplySchema)
	}
	for _, f := range []string{resyncRequestSchema, resyncReplySchema} {
		probs = append(probs, checkPayload(strings.TrimSuffix(f, ".json"), "./schemas/"+f, schemaDir)...)
	}
	return probs
}

// checkPayload checks that the payload $ref is, relative to the document,
// the schema file that ce-dataschema names for ceType.
func checkPayload(ceType, ref, schemaDir string) []string {
	uri := messages.SchemaURI(ceType)
	file, ok := strings.CutPrefix(ref, "./schemas/")
	if !ok || strings.Contains(ref, "#") {
		return []string{fmt.Sprintf("%s: payload $ref %q is not a file under ./schemas/", ceType, ref)}
	}
	if file != path.Base(uri) {
		return []string{fmt.Sprintf("%s: payload $ref %q, but ce-dataschema is %s", ceType, ref, uri)}
	}
	b, err := os.ReadFile(filepath.Join(schemaDir, file))
	if err != nil {
		return []string{fmt.Sprintf("%s: payload $ref %q: %v", ceType, ref, err)}
	}
	var s struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return []string{fmt.Sprintf("%s: %s: %v", ceType, file, err)}
	}
	if s.ID != uri {
		return []string{fmt.Sprintf("%s: %s has $id %q, ce-dataschema is %q", ceType, file, s.ID, uri)}
	}
	return nil
}

// checkHeaders checks the real messages of ty against the message's header
// schema: every header they carry is declared and has the declared const and
// pattern, every required header is on them, and the message fixes ce-type
// and ce-dataschema to what the code sends.
func checkHeaders(d *asyncDoc, ty lmsType, s headerSchema) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, ty.ceType+": "+fmt.Sprintf(format, args...)) }
	r := headerRules{consts: map[string][]string{}, patterns: map[string][]string{}, declared: map[string]bool{}}
	if err := d.resolveHeaders(s, &r, 0); err != nil {
		bad("%v", err)
		return probs
	}
	if len(r.declared) == 0 {
		bad("no headers declared")
	}
	for _, k := range r.required {
		if !r.declared[k] {
			bad("header %s is required but not declared", k)
		}
	}
	for k, want := range map[string]string{messages.HeaderType: ty.ceType, messages.HeaderDataSchema: messages.SchemaURI(ty.ceType)} {
		if !slices.Contains(r.consts[k], want) {
			bad("header %s: the document does not fix it to %q (consts %q)", k, want, r.consts[k])
		}
	}
	for i, m := range ty.msgs {
		for k, vals := range m.Header {
			if !r.declared[k] {
				bad("message %d sets header %s, not declared", i, k)
				continue
			}
			if len(vals) != 1 {
				bad("message %d: header %s has %d values", i, k, len(vals))
			}
			v := m.Header.Get(k)
			for _, c := range r.consts[k] {
				if v != c {
					bad("message %d: header %s is %q, the document says %q", i, k, v, c)
				}
			}
			for _, p := range r.patterns[k] {
				re, err := regexp.Compile(p)
				if err != nil {
					bad("header %s: pattern %q: %v", k, p, err)
				} else if !re.MatchString(v) {
					bad("message %d: header %s %q does not match the document's pattern %q", i, k, v, p)
				}
			}
		}
		for _, k := range r.required {
			if _, ok := m.Header[k]; !ok {
				bad("message %d lacks header %s, which the document requires", i, k)
			}
		}
		if m.Subject != ty.subject {
			bad("message %d is on %q, want %q", i, m.Subject, ty.subject)
		}
	}
	return probs
}

// TestAsyncAPI ties docs/asyncapi.yaml to the code: every vendor-facing
// type the code produces has its channel, address, payload schema and
// headers in the document, and the document describes nothing else.
func TestAsyncAPI(t *testing.T) {
	d := loadAsyncAPI(t)
	types := producedTypes(t)
	if want := len(pifu.Entities)*len(messages.Ops) + 3; len(types) != want {
		t.Fatalf("%d types, want %d", len(types), want)
	}
	for _, p := range checkAsyncAPI(d, types, schemaDirPath) {
		t.Error(p)
	}
}

// TestAsyncAPICatchesDrift makes sure checkAsyncAPI fails on the drifts it
// exists to catch.
func TestAsyncAPICatchesDrift(t *testing.T) {
	types := producedTypes(t)
	cases := map[string]func(*asyncDoc){
		"channel removed": func(d *asyncDoc) { delete(d.Channels, "personUpdated") },
		"address wrong": func(d *asyncDoc) {
			c := d.Channels["groupDeleted"]
			c.Address = "lms.{tenant}.groups.deleted"
			d.Channels["groupDeleted"] = c
		},
		"message of an unknown type": func(d *asyncDoc) {
			m := d.Components.Messages["orgCreated"]
			m.Name = "no.skolebuss.org.created.v2"
			d.Components.Messages["orgCreated"] = m
		},
		"payload of another type": func(d *asyncDoc) {
			m := d.Components.Messages["exportCompleted"]
			m.Payload.Ref = "./schemas/no.skolebuss.export.started.v1.json"
			d.Components.Messages["exportCompleted"] = m
		},
		"payload named differently from ce-dataschema": func(d *asyncDoc) {
			m := d.Components.Messages["membershipCreated"]
			m.Payload.Ref = "./schemas/no.skolebuss.membership.added.v1.json"
			d.Components.Messages["membershipCreated"] = m
		},
		"sent header undeclared": func(d *asyncDoc) {
			delete(d.Components.Schemas["cloudEventHeaders"].Properties, messages.HeaderMsgID)
		},
		"vendor parameter missing": func(d *asyncDoc) {
			delete(d.Channels["tenantUnlinked"].Parameters, "vendor")
		},
		"resync request on another subject": func(d *asyncDoc) {
			c := d.Channels["resyncRequest"]
			c.Address = "vendorreq.{tenant}.resync.{vendor}"
			d.Channels["resyncRequest"] = c
		},
		"resync reply missing": func(d *asyncDoc) {
			op := d.Operations["answerResyncRequest"]
			op.Reply = nil
			d.Operations["answerResyncRequest"] = op
		},
		"resync reply of another schema": func(d *asyncDoc) {
			m := d.Components.Messages["resyncReply"]
			m.Payload.Ref = "./schemas/" + resyncRequestSchema
			d.Components.Messages["resyncReply"] = m
		},
		"trace header undeclared": func(d *asyncDoc) {
			delete(d.Components.Schemas["cloudEventHeaders"].Properties, messages.HeaderTraceparent)
		},
		"header required that is not sent": func(d *asyncDoc) {
			s := d.Components.Schemas["cloudEventHeaders"]
			s.Required = append(s.Required, "tracestate")
			d.Components.Schemas["cloudEventHeaders"] = s
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d := loadAsyncAPI(t)
			if probs := checkAsyncAPI(d, types, schemaDirPath); len(probs) != 0 {
				t.Fatalf("the document does not pass before the change: %v", probs)
			}
			mutate(d)
			probs := checkAsyncAPI(d, types, schemaDirPath)
			if len(probs) == 0 {
				t.Fatal("no problem found")
			}
			t.Log(probs[0])
		})
	}
	t.Run("schema files missing", func(t *testing.T) {
		probs := checkAsyncAPI(loadAsyncAPI(t), types, t.TempDir())
		if len(probs) != len(types)+2 {
			t.Fatalf("%d problems, want one per type and for the resync request and reply: %v", len(probs), probs)
		}
		t.Log(probs[0])
	})
}
