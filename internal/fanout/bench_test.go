package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/projection"
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
				f, err := fanout.New(fanout.Config{Vendors: vendors, Poll: 50 * time.Millisecond},
					fanout.Deps{Conn: w.b.Conn, JS: w.b.JS, Store: store})
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
