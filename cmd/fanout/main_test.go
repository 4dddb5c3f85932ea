package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

func noEnv(string) string { return "" }

func TestHelpAndBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, noEnv); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"-nats-url", "-config", "-log-level", "-ack-wait", "-window", "VENDOR_<vendor>",
		"vendor.<vendor>.<tenant>.<entity>.<op>", "profile", "nats-config", "SIGTERM"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
	for _, args := range [][]string{
		{"--log-level", "loud"},
		{"--no-such-flag"},
		{"--window", "0"},
		{"--ack-wait", "-1s", "--nats-url", "nats://127.0.0.1:1"},
		{"--window", "-1", "--nats-url", "nats://127.0.0.1:1"},
		{"--config", "no/such/file.yaml"},
		{"stray"},
	} {
		err := run(context.Background(), args, io.Discard, noEnv)
		if code := daemon.ExitCode("fanout", err, io.Discard); code != 2 || !errors.Is(err, daemon.ErrUsage) {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
	}
}

// The daemon, with the demo configuration's two vendors, delivers a
// canonical export of a tenant linked to both to each vendor's stream,
// and stops cleanly when its context ends (SIGINT/SIGTERM in main).
func TestDeliversToEveryVendorUntilStopped(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	tenant := config.DemoTenants[0].ID
	exportID := "export-1"
	publishExport(t, b, tenant, exportID)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var logs waitfor.Buffer
	done := make(chan error, 1)
	go func() { done <- run(runCtx, []string{"--nats-url", b.Conn.ConnectedUrl()}, &logs, noEnv) }()

	for _, v := range []string{config.DemoVendorContact, config.DemoVendorRoster} {
		subj, err := messages.VendorBoundarySubject(v, tenant, messages.PhaseCompleted)
		if err != nil {
			t.Fatal(err)
		}
		var got messages.Boundary
		waitfor.Condition(t, 30*time.Second, func() error {
			select {
			case err := <-done:
				t.Fatalf("the fan-out ended early: %v\n%s", err, logs.String())
			default:
			}
			s, err := b.JS.Stream(ctx, bus.VendorStream(v))
			if err != nil {
				return err
			}
			raw, err := s.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				return fmt.Errorf("%s: %w", subj, err)
			}
			got, err = messages.Decode[messages.Boundary](bustest.NATSMsg(raw))
			return err
		})
		if got.ExportID != exportID || got.Checksum == "" || got.Counts[pifu.EntityPerson].Total == 0 {
			t.Errorf("%s: export.completed %+v", v, got)
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the fan-out did not stop with its context")
	}
	if out := logs.String(); !strings.Contains(out, "fanout started") || !strings.Contains(out, "fanout stopped") {
		t.Errorf("logs lack the start or the stop:\n%s", out)
	}
}

// publishExport publishes a tiny first export of tenant on the LMS stream
// as the publisher does: export.started, the creations, export.completed.
func publishExport(t *testing.T, b *bus.Bus, tenant, exportID string) {
	t.Helper()
	ctx := context.Background()
	sizes, _ := rostergen.Preset("tiny")
	m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Fjordvik kommune", Seed: 1, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := m.WriteExport(ctx, &doc, 0); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	var evs []messages.Event
	res, err := diff.Run(ctx, diff.Config{SpoolDir: t.TempDir(), DeleteThreshold: 1},
		diff.Input{Tenant: tenant, ExportID: exportID, Next: pifu.NewDecoder(&doc)},
		func(_ context.Context, c diff.Change) error {
			evs = append(evs, messages.Event{ID: c.ID, Tenant: tenant, ExportID: exportID, Entity: c.Entity,
				Op: messages.Op(c.Op), Key: c.Key, Time: at, Object: c.Object, Previous: c.Previous})
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[pifu.Entity]messages.Counts{}
	for e, c := range res.Counts {
		counts[e] = messages.Counts{Created: c.Created, Total: res.Snapshot.Count(e)}
	}
	publish := func(v messages.Codable) {
		msg, err := messages.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JS.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	publish(messages.Boundary{ID: messages.BoundaryID(tenant, exportID, messages.PhaseStarted), Tenant: tenant,
		ExportID: exportID, Phase: messages.PhaseStarted, Time: at, Counts: counts})
	for _, ev := range evs {
		publish(ev)
	}
	publish(messages.Boundary{ID: messages.BoundaryID(tenant, exportID, messages.PhaseCompleted), Tenant: tenant,
		ExportID: exportID, Phase: messages.PhaseCompleted, Time: at, Counts: counts,
		Checksum: messages.FormatChecksum(res.Snapshot.Checksum())})
}
