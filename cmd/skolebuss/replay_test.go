package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
)

func TestReplay(t *testing.T) {
	b, cfg := opsBus(t)
	ctx := context.Background()
	job := messages.ExportJob{JobID: "demand-1", Tenant: opsTenant, Application: "skolebuss-demo",
		Reason: messages.ReasonDemand, RequestedAt: time.Now()}
	failed, err := messages.Encode(job)
	if err != nil {
		t.Fatal(err)
	}
	dl := messages.NewDeadLetter("fetch", opsTenant, failed, failure.Permanentf("forbidden", "export API answered 403"), 1, "", time.Now())
	m, err := messages.Encode(dl)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.JS.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(ack.Sequence, 10)

	var out, errs bytes.Buffer
	if code := run(ctx, []string{"replay", "--config", cfg, "--seq", seq, "--force"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	for _, want := range []string{"stage fetch", "forbidden", "replayed as export job replay-" + seq, "forced"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	s, err := b.JS.Stream(ctx, bus.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, "jobs.export."+opsTenant)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get("Skolebuss-Force") != "true" {
		t.Errorf("forced replay's job headers %v", raw.Header)
	}
	out.Reset()
	if code := run(ctx, []string{"replay", "--config", cfg, "--seq", seq}, &out, &errs); code != 0 || !strings.Contains(out.String(), "already replayed") {
		t.Errorf("second replay: exit %d %q", code, out.String())
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--seq", "999"}, 1, "no dead letter with sequence 999"},
		{[]string{"--seq", "0"}, 2, "--seq"},
		{[]string{"--seq", "-3"}, 2, "--seq"},
		{[]string{}, 2, "--seq is required"},
	} {
		errs.Reset()
		code := run(ctx, append([]string{"replay", "--config", cfg}, c.args...), &out, &errs)
		if code != c.code || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: exit %d %q; want %d and %q", c.args, code, errs.String(), c.code, c.want)
		}
	}
}
