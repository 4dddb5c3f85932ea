package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

const (
	opsTenant2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7" // linked, never exported
	opsTenant3 = "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f" // not linked
)

// skolebuss vendors resync stores a resync a running fan-out does, and
// prints its id; an unknown vendor, an unlinked tenant and a tenant
// without state are refused with what is wrong.
func TestVendorsResync(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	cfgFile := writeOpsConfig(t, filepath.Join(t.TempDir(), "skolebuss.yaml"), fmt.Sprintf("{url: %q}", b.Conn.ConnectedUrl()),
		fmt.Sprintf("vendors:\n  - {name: lms-a, tenants: [%s, %s], profile: [roster], delivery: {nats: {}}}\n", opsTenant, opsTenant2),
		opsTenant, opsTenant2, opsTenant3)
	store, err := bus.ProvisionVendors(ctx, b.JS, bus.ProvisionConfig{}, []string{"lms-a"})
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's applied state, as the publisher leaves it.
	sizes, _ := rostergen.Preset("tiny")
	m, err := rostergen.New(rostergen.Spec{TenantID: opsTenant, Name: "Fjordvik", Seed: 1, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	if _, err := m.WriteExport(ctx, &doc, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stores.Exports.PutBytes(ctx, "export-1", doc.Bytes()); err != nil {
		t.Fatal(err)
	}
	snap, _, err := snapshot.FromRecords(opsTenant, "export-1", pifu.NewDecoder(bytes.NewReader(doc.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if err := snap.Encode(&enc); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stores.Snapshots.Put(ctx, jetstream.ObjectMeta{Name: publisher.SnapshotName(opsTenant),
		Metadata: map[string]string{publisher.MetaExportID: "export-1", publisher.MetaExportObject: "export-1"}}, &enc); err != nil {
		t.Fatal(err)
	}

	var out, errs bytes.Buffer
	if code := run(ctx, []string{"vendors", "resync", "--config", cfgFile, "--vendor", "lms-a", "--tenant", opsTenant}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if f := strings.Fields(out.String()); len(f) < 3 || f[0] != "resync" || f[1] != "requested:" || len(f[2]) < 20 {
		t.Fatalf("output %q", out.String())
	}
	// A fan-out started now does it: the vendor's stream gets the state.
	roster, _ := projection.ParseProfile()
	f, err := fanout.New(fanout.Config{Vendors: []fanout.Vendor{{Name: "lms-a", Tenants: []string{opsTenant, opsTenant2}, Profile: roster}},
		Poll: 100 * time.Millisecond}, fanout.Deps{Conn: b.Conn, JS: b.JS, Store: store, Snapshots: b.Stores.Snapshots, Exports: b.Stores.Exports})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	var completed messages.Boundary
	waitfor.Condition(t, 30*time.Second, func() error {
		for _, m := range bustest.Msgs(t, b.JS, bus.VendorStream("lms-a")) {
			if strings.HasSuffix(m.Subject, ".export.completed") {
				completed, err = messages.Decode[messages.Boundary](bustest.NATSMsg(m))
				return err
			}
		}
		return fmt.Errorf("no export.completed on the vendor's stream")
	})
	if !completed.Resync || completed.ExportID != "export-1" || completed.Tenant != opsTenant {
		t.Errorf("export.completed %+v", completed)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--vendor", "nobody", "--tenant", opsTenant}, 2, "--vendor nobody: no such vendor in the fan-out's configuration in " + cfgFile + " (known: lms-a)"},
		{[]string{"--vendor", "lms-a", "--tenant", opsTenant3}, 2, "--tenant " + opsTenant3 + ": the tenant is not linked to the vendor lms-a"},
		{[]string{"--vendor", "lms-a", "--tenant", opsTenant2}, 1, "tenant " + opsTenant2 + " has no exported state yet"},
		{[]string{"--vendor", "lms-a"}, 2, "--vendor and --tenant are required"},
		{[]string{"--vendor", "lms-a", "--tenant", "a.b"}, 2, "--tenant"},
		{[]string{"--vendor", "lms-a", "--tenant", opsTenant, "--reason", strings.Repeat("x", 201)}, 2, "at most 200"},
	} {
		out.Reset()
		errs.Reset()
		args := append([]string{"vendors", "resync", "--config", cfgFile}, c.args...)
		if code := run(ctx, args, &out, &errs); code != c.code || !strings.Contains(errs.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", c.args, code, errs.String(), c.code, c.want)
		}
	}
	out.Reset()
	errs.Reset()
	if code := run(ctx, []string{"vendors", "resync", "--help"}, &out, &errs); code != 0 ||
		!strings.Contains(errs.String()+out.String(), "whole current state of tenant ID") {
		t.Errorf("--help: exit %d: %s%s", code, out.String(), errs.String())
	}
}
