package messages_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// An update of a person's e-mail address, as a vendor subscribed to
// lms.<tenant>.> receives it: the subject, the headers (CloudEvents binary
// mode, deduplication id, trace context) and the JSON body with the record
// after the change and the previous value of the changed field.
func ExampleEncode() {
	tenant := "aa750693-e3ea-441b-93fe-6a71a8371afa"
	person := pifu.Person{
		SourcedID: pifu.SourcedID{Source: "FlytSkole", ID: "p-1001"},
		Name:      pifu.Name{Formatted: "Åse Ødegård", Family: "Ødegård", Given: "Åse"},
		Email:     "ase.odegard@fjordvik.kommune.no",
	}
	object, _ := json.Marshal(person)
	ev := messages.Event{
		Tenant:   tenant,
		ExportID: "20260302T073000Z-3f2a",
		Entity:   pifu.EntityPerson,
		Op:       messages.OpUpdated,
		Key:      person.SourcedID.Key(),
		Time:     time.Date(2026, 3, 2, 7, 30, 5, 0, time.UTC),
		Object:   object,
		Previous: json.RawMessage(`{"email":"ase@fjordvik.kommune.no"}`),
	}
	ev.ID = "9f2c1d7e5a3b48c0a1e6f0d2b7c4e8a1" // diff.Change.ID: deterministic per change

	msg, err := messages.Encode(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	// internal/telemetry adds the trace context of the publisher's span.
	msg.Header.Set(messages.HeaderTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	fmt.Println("subject:", msg.Subject)
	keys := make([]string, 0, len(msg.Header))
	for k := range msg.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%s: %s\n", k, msg.Header.Get(k))
	}
	fmt.Println(string(msg.Data))
	// Output:
	// subject: lms.aa750693-e3ea-441b-93fe-6a71a8371afa.person.updated
	// Nats-Msg-Id: 9f2c1d7e5a3b48c0a1e6f0d2b7c4e8a1
	// ce-dataschema: https://skolebuss.no/schemas/no.skolebuss.person.updated.v1.json
	// ce-id: 9f2c1d7e5a3b48c0a1e6f0d2b7c4e8a1
	// ce-source: /skolebuss/tenants/aa750693-e3ea-441b-93fe-6a71a8371afa
	// ce-specversion: 1.0
	// ce-subject: FlytSkole/p-1001
	// ce-time: 2026-03-02T07:30:05Z
	// ce-type: no.skolebuss.person.updated.v1
	// content-type: application/json
	// traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// {"tenant":"aa750693-e3ea-441b-93fe-6a71a8371afa","export_id":"20260302T073000Z-3f2a","object":{"sourcedid":{"source":"FlytSkole","id":"p-1001"},"name":{"fn":"Åse Ødegård","family":"Ødegård","given":"Åse"},"email":"ase.odegard@fjordvik.kommune.no"},"previous":{"email":"ase@fjordvik.kommune.no"}}
}
