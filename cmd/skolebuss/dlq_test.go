package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
)

func TestDLQ(t *testing.T) {
	b, cfg := opsBus(t)
	ctx := context.Background()
	var out, errs bytes.Buffer
	dlq := func(args ...string) (int, string, string) {
		out.Reset()
		errs.Reset()
		code := run(ctx, append([]string{"dlq", "--config", cfg}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}
	if code, o, e := dlq(); code != 0 || !strings.Contains(o, "no dead letters") {
		t.Fatalf("empty DLQ: exit %d %q %q", code, o, e)
	}

	const other = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	put := func(stage, tenant string, failed *nats.Msg, err error, attempts int) uint64 {
		t.Helper()
		dl := messages.NewDeadLetter(stage, tenant, failed, err, attempts, "4bf92f3577b34da6a3ce929d0e0e4736", time.Now())
		m, encErr := messages.Encode(dl)
		if encErr != nil {
			t.Fatal(encErr)
		}
		ack, pubErr := b.JS.PublishMsg(ctx, m)
		if pubErr != nil {
			t.Fatal(pubErr)
		}
		return ack.Sequence
	}
	job := func(tenant string) *nats.Msg {
		m, err := messages.Encode(messages.ExportJob{JobID: "demand-1", Tenant: tenant, Application: "skolebuss-demo",
			Reason: messages.ReasonDemand, RequestedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	put("fetch", opsTenant, job(opsTenant), failure.Permanentf("forbidden", "export API answered 403:\ninsufficient_scope"), 1)
	put("fetch", other, job(other), failure.Permanentf("invalid_client", "token endpoint refused the client"), 1)
	seqHeld := put("publish", opsTenant, job(opsTenant), failure.Permanentf("deletion_held", "would delete %d%% of %d records", 100, 4217), 1)

	code, o, e := dlq()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, e)
	}
	for _, want := range []string{"seq", "forbidden", "invalid_client", "deletion_held", "export API answered 403: insufficient_scope",
		"4bf92f3577b34da6a3ce929d0e0e4736", "3 dead letter(s)"} {
		if !strings.Contains(o, want) {
			t.Errorf("listing lacks %q:\n%s", want, o)
		}
	}
	if _, o, _ := dlq("--tenant", other); strings.Contains(o, "forbidden") || !strings.Contains(o, "invalid_client") || !strings.Contains(o, "1 dead letter(s)") {
		t.Errorf("--tenant %s:\n%s", other, o)
	}
	if _, o, _ := dlq("--stage", "publish"); !strings.Contains(o, "deletion_held") || strings.Contains(o, "forbidden") {
		t.Errorf("--stage publish:\n%s", o)
	}
	if _, o, _ := dlq("--last", "1"); !strings.Contains(o, "deletion_held") || strings.Contains(o, "invalid_client") {
		t.Errorf("--last 1:\n%s", o)
	}
	_, o, _ = dlq("--json", "--stage", "publish")
	var row struct {
		Seq    uint64 `json:"seq"`
		Reason string `json:"reason"`
		Stage  string `json:"stage"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(o)), &row); err != nil || row.Seq != seqHeld || row.Reason != "deletion_held" || row.Stage != "publish" {
		t.Errorf("--json: %v %+v from %q", err, row, o)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--stage", "parse"}, "--stage"},
		{[]string{"--tenant", "a.b"}, "--tenant"},
		{[]string{"--tenant", "*"}, "--tenant"},
		{[]string{"--last", "-1"}, "--last"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"--tenant", "nonexist"}, "is not a UUID"},
		// Neither configured nor in any dead letter: a typo, said as such.
		{[]string{"--tenant", "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"}, "unknown tenant"},
		{[]string{"--tenant", "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"}, "known: " + opsTenant},
	} {
		if code, _, e := dlq(c.args...); code != 2 || !strings.Contains(e, c.want) {
			t.Errorf("%v: exit %d %q; want 2 and %q", c.args, code, e, c.want)
		}
	}
	// A tenant id in upper case is the same tenant.
	if code, o, e := dlq("--tenant", strings.ToUpper(opsTenant)); code != 0 || !strings.Contains(o, "forbidden") || !strings.Contains(o, "2 dead letter(s)") {
		t.Errorf("--tenant in upper case: exit %d %q %q", code, o, e)
	}
	// A configured tenant without dead letters has none, which is no error.
	if code, o, e := dlq("--tenant", opsTenant, "--stage", "publish", "--last", "0"); code != 0 || !strings.Contains(o, "deletion_held") {
		t.Errorf("--tenant --stage: exit %d %q %q", code, o, e)
	}
}
