package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// BenchmarkFirstExport delivers a medium municipality's first export to
// one new roster+contact vendor per iteration and reports the vendor
// events stored per second.
func BenchmarkFirstExport(b *testing.B) {
	sizes, _ := rostergen.Preset("medium")
	m, err := rostergen.New(rostergen.Spec{TenantID: tenantA, Name: "Kommune A", Seed: 1, Sizes: sizes})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteExport(context.Background(), &buf, 0); err != nil {
		b.Fatal(err)
	}
	w := &world{b: bustest.Open(b), docs: map[string][][]byte{tenantA: {buf.Bytes()}}}
	w.publishExport(b, tenantA, 0)
	prof, _ := projection.ParseProfile("contact")
	ctx := context.Background()
	var events, elapsed float64
	i := 0
	for b.Loop() {
		i++
		v := fanout.Vendor{Name: fmt.Sprintf("bench-%d", i), Tenants: []string{tenantA}, Profile: prof}
		store, err := bus.ProvisionVendors(ctx, w.b.JS, bus.ProvisionConfig{}, []string{v.Name})
		if err != nil {
			b.Fatal(err)
		}
		f, err := fanout.New(fanout.Config{Vendors: []fanout.Vendor{v}, Poll: 50 * time.Millisecond},
			fanout.Deps{Conn: w.b.Conn, JS: w.b.JS, Store: store, Snapshots: w.b.Stores.Snapshots, Exports: w.b.Stores.Exports})
		if err != nil {
			b.Fatal(err)
		}
		run, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- f.Run(run) }()
		s, err := w.b.JS.Stream(ctx, bus.VendorStream(v.Name))
		if err != nil {
			b.Fatal(err)
		}
		for {
			info, err := s.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			c, err := w.b.JS.Consumer(ctx, bus.StreamLMS, fanout.ConsumerName(v.Name))
			if err == nil {
				if ci, err := c.Info(ctx); err == nil && ci.AckFloor.Consumer == 1 {
					events += float64(info.State.Msgs)
					break
				}
			}
			time.Sleep(20 * time.Millisecond) // polling the benchmark's own end
		}
		elapsed += time.Since(start).Seconds()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(events/elapsed, "events/s")
}
