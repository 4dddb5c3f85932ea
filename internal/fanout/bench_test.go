package fanout_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rawpublish"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// BenchmarkFirstExport delivers a medium municipality's first export to
// 1, 3 and 10 new vendors per iteration (roster and roster+contact in turn)
// and reports the vendor events stored per second, summed over the
// vendors, and their ratio to the raw asynchronous publish rate of as many
// messages of the vendor events' average size, measured on the same server
// right after each iteration (the machine's load moves both alike).
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
	ctx := context.Background()
	var profiles []projection.Profile
	for _, parts := range [][]string{nil, {"contact"}} {
		p, err := projection.ParseProfile(parts...)
		if err != nil {
			b.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	i := 0
	for _, n := range []int{1, 3, 10} {
		b.Run(fmt.Sprintf("vendors=%d", n), func(b *testing.B) {
			var events, elapsed, raw float64
			for b.Loop() {
				i++
				var vendors []fanout.Vendor
				var names []string
				for k := range n {
					v := fanout.Vendor{Name: fmt.Sprintf("bench-%d-%d", i, k), Tenants: []string{tenantA}, Profile: profiles[k%2]}
					vendors, names = append(vendors, v), append(names, v.Name)
				}
				store, err := bus.ProvisionVendors(ctx, w.b.JS, bus.ProvisionConfig{}, names)
				if err != nil {
					b.Fatal(err)
				}
				f, err := fanout.New(fanout.Config{Vendors: vendors, Poll: 50 * time.Millisecond, CacheEvents: 1_000_000},
					fanout.Deps{Conn: w.b.Conn, JS: w.b.JS, Store: store, Snapshots: w.b.Stores.Snapshots,
						Exports: w.b.Stores.Exports})
				if err != nil {
					b.Fatal(err)
				}
				run, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- f.Run(run) }()
				for _, v := range names {
					for {
						c, err := w.b.JS.Consumer(ctx, bus.StreamLMS, fanout.ConsumerName(v))
						if err == nil {
							if ci, err := c.Info(ctx); err == nil && ci.AckFloor.Consumer == 1 {
								break
							}
						}
						time.Sleep(20 * time.Millisecond) // polling the benchmark's own end
					}
				}
				elapsed += time.Since(start).Seconds()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				var msgs, bytes uint64
				for _, v := range names {
					s, err := w.b.JS.Stream(ctx, bus.VendorStream(v))
					if err != nil {
						b.Fatal(err)
					}
					info, err := s.Info(ctx)
					if err != nil {
						b.Fatal(err)
					}
					msgs, bytes = msgs+info.State.Msgs-2, bytes+info.State.Bytes
					if err := w.b.JS.DeleteStream(ctx, bus.VendorStream(v)); err != nil {
						b.Fatal(err)
					}
				}
				events += float64(msgs)
				r, err := rawRate(ctx, w.b.JS, int(bytes/msgs), int(msgs))
				if err != nil {
					b.Fatal(err)
				}
				raw += r * time.Since(start).Seconds() // weighted as the fan-out's time
			}
			b.ReportMetric(events/elapsed, "events/s")
			b.ReportMetric(events/elapsed/(raw/elapsed), "ratio")
		})
	}
}

// rawRate is the raw asynchronous publish rate of count messages of size
// bytes with unique ids into a stream of its own, removed after.
func rawRate(ctx context.Context, js jetstream.JetStream, size, count int) (float64, error) {
	const name = "BENCH_RAW"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.raw"},
		Duplicates: time.Hour}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(ctx, name)
	pjs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return 0, err
	}
	return rawpublish.Measure(ctx, pjs, "bench.raw", size, count, rawpublish.WithMsgID())
}

// BenchmarkResync measures, per iteration for one new roster+contact
// vendor, the fan-out of a municipality's first export (from the LMS
// stream) and then a resync of the same state (from the stored export), and
// reports both as vendor events stored per second and seconds each. The
// municipality is medium, or FANOUT_BENCH_PRESET's.
func BenchmarkResync(b *testing.B) {
	preset := "medium"
	if p := os.Getenv("FANOUT_BENCH_PRESET"); p != "" {
		preset = p
	}
	sizes, err := rostergen.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
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
	var events, firstSecs, resyncSecs float64
	i := 0
	for b.Loop() {
		i++
		// No snapshot yet: the new vendor gets the export from the stream.
		if err := w.b.Stores.Snapshots.Delete(ctx, publisher.SnapshotName(tenantA)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			b.Fatal(err)
		}
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
		n := waitCompleted(b, w, v.Name, 1)
		firstSecs += time.Since(start).Seconds()
		// The export applied: the publisher's snapshot, then a resync.
		w.settle(b, tenantA, 0)
		start = time.Now()
		if _, err := f.Request(ctx, v.Name, tenantA, "bench"); err != nil {
			b.Fatal(err)
		}
		if got := waitCompleted(b, w, v.Name, 2) - n; got != n {
			b.Fatalf("the resync stored %d events, the first export %d", got, n)
		}
		resyncSecs += time.Since(start).Seconds()
		events += float64(n)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(events/firstSecs, "first-events/s")
	b.ReportMetric(events/resyncSecs, "resync-events/s")
	b.ReportMetric(firstSecs/float64(i), "first-s")
	b.ReportMetric(resyncSecs/float64(i), "resync-s")
	b.ReportMetric(events/float64(i), "vendor-events")
}

// waitCompleted waits until vendor's stream holds n export.completed
// events, the last one its last message, and returns its message count.
func waitCompleted(b *testing.B, w *world, vendor string, n int) int {
	ctx := context.Background()
	s, err := w.b.JS.Stream(ctx, bus.VendorStream(vendor))
	if err != nil {
		b.Fatal(err)
	}
	subj, err := messages.VendorBoundarySubject(vendor, tenantA, messages.PhaseCompleted)
	if err != nil {
		b.Fatal(err)
	}
	for {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			b.Fatal(err)
		}
		if len(info.State.Subjects) > 0 && info.State.Subjects[subj] == uint64(n) {
			return int(info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond) // polling the benchmark's own end
	}
}
