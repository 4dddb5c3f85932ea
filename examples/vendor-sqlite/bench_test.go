package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/vendortest"
	"github.com/skolebuss/skolebuss/vendorkit"
)

// events makes n change events of tenant from sequence seq on: created, or
// updated when update is set, objects of about 200 bytes.
func events(tenant string, seq uint64, n int, update bool) []vendorkit.Event {
	out := make([]vendorkit.Event, n)
	op := vendorkit.OpCreated
	if update {
		op = vendorkit.OpUpdated
	}
	for i := range out {
		e := vendorkit.Entities[i%4]
		key := fmt.Sprintf("%s-%d", e, i)
		obj := fmt.Appendf(nil, `{"sourcedid":{"source":"bench","id":%q},"name":"Navn %d","update":%t,"note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, key, i, update)
		out[i] = vendorkit.Event{Seq: seq + uint64(i), Tenant: tenant, Kind: vendorkit.KindChange,
			Change: &vendorkit.Change{Entity: e, Op: op, Key: key, Object: obj, Mix: vendorkit.RecordMix(e, key, obj)}}
	}
	return out
}

// BenchmarkStoreApply applies batches of 1,000 events to the SQLite store,
// as the kit does: creations into a growing file, then updates of records
// held.
func BenchmarkStoreApply(b *testing.B) {
	for _, update := range []bool{false, true} {
		b.Run(map[bool]string{false: "created", true: "updated"}[update], func(b *testing.B) {
			ctx := context.Background()
			s, err := OpenStore(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const batch = 1000
			seq := uint64(1)
			if update {
				if err := s.Apply(ctx, events("t", seq, batch*20, false)); err != nil {
					b.Fatal(err)
				}
				seq += batch * 20
			}
			var applying time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				evs := events(fmt.Sprintf("t%d", i), seq, batch, update)
				if update {
					evs = events("t", seq, batch, true)
					for j := range evs {
						evs[j].Change.Key = fmt.Sprintf("%s-%d", evs[j].Change.Entity, (i*batch+j)%(batch*20))
					}
				}
				b.StartTimer()
				t0 := time.Now()
				if err := s.Apply(ctx, evs); err != nil {
					b.Fatal(err)
				}
				applying += time.Since(t0)
				seq += batch
			}
			b.ReportMetric(float64(b.N*batch)/applying.Seconds(), "events/s")
		})
	}
}

// BenchmarkKitSQLite measures the whole vendor: the kit reading a
// vendor's stream from an in-process server into the SQLite store, an
// export of 20,000 records and one of changes to it, from the first message
// to the last applied.
func BenchmarkKitSQLite(b *testing.B) {
	s := bustest.RunServer(b, vendortest.Users(vendor))
	_, js := bustest.Connect(b, s, vendortest.AdminOptions()...)
	ctx := context.Background()
	if err := vendortest.ProvisionStream(ctx, js, vendor); err != nil {
		b.Fatal(err)
	}
	feed := vendortest.NewFeed(vendor, 1)
	for range 2 {
		if _, err := feed.Export(ctx, js, tenants[0], vendortest.ExportOptions{Size: 20000}); err != nil {
			b.Fatal(err)
		}
	}
	total := uint64(feed.Published)
	cpu0 := vendortest.CPUTime()
	b.ResetTimer()
	for i := range b.N {
		store, err := OpenStore(ctx, filepath.Join(b.TempDir(), fmt.Sprint(i, ".db")))
		if err != nil {
			b.Fatal(err)
		}
		vendortest.ApplyAll(b, s.ClientURL(), vendor, store, total)
		_ = store.Close()
	}
	vendortest.ReportRates(b, total, cpu0)
}
