package diff_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// writeXML writes the municipality as a PIFU-IMS full export, one
// <membership> per membership record.
func (m *muni) writeXML(w io.Writer) {
	e := html.EscapeString
	sidXML := func(s pifu.SourcedID) string {
		return "<sourcedid><source>" + e(s.Source) + "</source><id>" + e(s.ID) + "</id></sourcedid>"
	}
	fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<enterprise xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1">
  <properties lang="nb"><datasource>flyt</datasource><type>full</type><datetime>2025-09-01T06:00:00</datetime></properties>
`)
	for _, p := range m.persons {
		fmt.Fprintf(w, "  <person>\n    %s\n", sidXML(p.SourcedID))
		for _, u := range p.UserIDs {
			fmt.Fprintf(w, "    <userid useridtype=%q>%s</userid>\n", u.Type, e(u.Value))
		}
		fmt.Fprintf(w, "    <name><fn>%s</fn><n><family>%s</family><given>%s</given></n></name>\n",
			e(p.Name.Formatted), e(p.Name.Family), e(p.Name.Given))
		if p.Email != "" {
			fmt.Fprintf(w, "    <email>%s</email>\n", e(p.Email))
		}
		fmt.Fprint(w, "  </person>\n")
	}
	for _, g := range m.groups {
		fmt.Fprintf(w, "  <group>\n    %s\n", sidXML(g.SourcedID))
		for _, t := range g.Types {
			fmt.Fprintf(w, "    <grouptype><scheme>%s</scheme><typevalue level=\"1\">%s</typevalue></grouptype>\n", t.Scheme, t.Value)
		}
		fmt.Fprintf(w, "    <description><short>%s</short></description>\n", e(g.Short))
		parent := g.SourcedID
		if p, ok := g.Parent(); ok {
			parent = p
		}
		fmt.Fprintf(w, "    <relationship relation=\"1\">%s</relationship>\n  </group>\n", sidXML(parent))
	}
	for _, ms := range m.members {
		fmt.Fprintf(w, "  <membership>%s<member>%s<idtype>1</idtype><role roletype=%q><status>%s</status></role></member></membership>\n",
			sidXML(ms.Group), sidXML(ms.Member), ms.RoleType, ms.Status)
	}
	fmt.Fprint(w, "</enterprise>\n")
}

func benchDoc(b *testing.B) ([]byte, int) {
	b.Helper()
	m := newMuni(42, 20, 10, 25) // 5,200 persons, 221 groups, 5,200 memberships
	var buf bytes.Buffer
	m.writeXML(&buf)
	return buf.Bytes(), len(m.persons) + len(m.groups) + len(m.members)
}

// BenchmarkParseOnly is the floor: stream-parse the document, nothing else.
func BenchmarkParseOnly(b *testing.B) {
	doc, n := benchDoc(b)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		d := pifu.NewDecoder(bytes.NewReader(doc))
		got := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("%d records, want %d", got, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkDiffUnchanged parses the same document and diffs it against its
// own snapshot: the publisher's work for an unchanged re-export.
func BenchmarkDiffUnchanged(b *testing.B) {
	doc, n := benchDoc(b)
	prev := mustSnapshot(b, decodeAll(b, doc), "e0")
	cfg := diff.Config{SpoolDir: b.TempDir()}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		res, err := diff.Run(context.Background(), cfg, diff.Input{Tenant: tenant, ExportID: "e1", Prev: prev,
			Next: pifu.NewDecoder(bytes.NewReader(doc))}, func(context.Context, diff.Change) error {
			b.Fatal("change in an unchanged export")
			return nil
		})
		if err != nil || res.Total().Unchanged != n {
			b.Fatalf("%v, %+v", err, res.Total())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkDiffFirstExport is the other extreme: every record is a
// creation, spooled and replayed.
func BenchmarkDiffFirstExport(b *testing.B) {
	b.Run("own", func(b *testing.B) { benchDiffFirstExport(b, false) })
	b.Run("borrow", func(b *testing.B) { benchDiffFirstExport(b, true) })
}

func benchDiffFirstExport(b *testing.B, borrow bool) {
	doc, n := benchDoc(b)
	cfg := diff.Config{SpoolDir: b.TempDir()}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := diff.Run(context.Background(), cfg, diff.Input{Tenant: tenant, ExportID: "e1", Borrow: borrow,
			Next: pifu.NewDecoder(bytes.NewReader(doc))}, func(context.Context, diff.Change) error { return nil })
		if err != nil || res.Emitted != n {
			b.Fatalf("%v, %d emitted", err, res.Emitted)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkHashCompare is the diff's own work per record on the unchanged
// path, with records already in memory.
func BenchmarkHashCompare(b *testing.B) {
	recs := newMuni(42, 20, 10, 25).records()
	prev := mustSnapshot(b, recs, "e0")
	cfg := diff.Config{SpoolDir: b.TempDir()}
	for b.Loop() {
		res, err := diff.Run(context.Background(), cfg, diff.Input{Tenant: tenant, ExportID: "e1", Prev: prev,
			Next: reader(recs)}, func(context.Context, diff.Change) error { return nil })
		if err != nil || res.Emitted != 0 {
			b.Fatalf("%v, %d emitted", err, res.Emitted)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// streamRecords synthesises n records on the fly (persons, then
// memberships of them in 1,000 groups) without holding them: the memory a
// Run over it uses is the diff's own. Generation gen changes every 20th
// person's name and drops every 50th membership.
type streamRecords struct {
	n, i int
	gen  int
}

func (s *streamRecords) Next() (pifu.Record, error) {
	if s.i == s.n {
		return pifu.Record{}, io.EOF
	}
	i := s.i
	s.i++
	half := s.n / 2
	if i < half {
		given := "Ola"
		if s.gen > 0 && i%20 == 0 {
			given = "Kari"
		}
		return pifu.Record{Person: &pifu.Person{SourcedID: sid(fmt.Sprintf("p%07d", i)),
			Name:    pifu.Name{Formatted: given + " Nordmann", Family: "Nordmann", Given: given},
			UserIDs: []pifu.Typed{{Type: "studentID", Value: fmt.Sprint(1_000_000 + i)}},
			Email:   fmt.Sprintf("p%07d@skole.example", i)}}, nil
	}
	p := i - half
	if s.gen > 0 && p%50 == 0 {
		return s.Next()
	}
	return pifu.Record{Membership: &pifu.Membership{Group: sid(fmt.Sprintf("g%04d", p%1000)),
		Member: sid(fmt.Sprintf("p%07d", p)), RoleType: "01", Status: "1"}}, nil
}

// peakHeap samples the live heap until stop is called.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkLarge800k runs a first export, a changed generation and an
// unchanged one of 800,000 synthetic records, and reports the peak live
// heap of each (run it with -benchtime=1x; it takes about a minute).
func BenchmarkLarge800k(b *testing.B) {
	const n = 800_000
	for b.Loop() {
		spool := b.TempDir()
		run := func(name string, prev *snapshot.Snapshot, gen, prevGen int) *snapshot.Snapshot {
			runtime.GC()
			stop := peakHeap()
			start := time.Now()
			res, err := diff.Run(context.Background(), diff.Config{SpoolDir: spool, Force: true},
				diff.Input{Tenant: tenant, ExportID: name, Prev: prev, Next: &streamRecords{n: n, gen: gen},
					OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
						return &streamRecords{n: n, gen: prevGen}, io.NopCloser(nil), nil
					}},
				func(context.Context, diff.Change) error { return nil })
			peak := stop()
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%-9s %v: %+v, %d emitted, peak heap %.1f MiB", name, time.Since(start).Round(time.Millisecond),
				res.Total(), res.Emitted, float64(peak)/(1<<20))
			b.ReportMetric(float64(peak)/(1<<20), name+"-peak-MiB")
			return res.Snapshot
		}
		s0 := run("first", nil, 0, 0)
		s1 := run("changed", s0, 1, 0)
		run("unchanged", s1, 1, 1)
	}
}
