package projection_test

import (
	"bytes"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// benchRecords are the records of a medium municipality's export and its
// index.
func benchRecords(b *testing.B) ([]pifu.Record, *projection.Index) {
	doc := generated(b, "medium", 0)[0]
	var recs []pifu.Record
	each(b, doc, func(r pifu.Record) { recs = append(recs, r) })
	return recs, index(b, doc)
}

// BenchmarkRecord projects typed records (one op is one record).
func BenchmarkRecord(b *testing.B) {
	recs, ix := benchRecords(b)
	for _, parts := range [][]string{nil, {"contact"}, projection.PartNames()} {
		prof := profile(b, parts...)
		b.Run(prof.String(), func(b *testing.B) {
			p := projector(b, prof, ix, ix)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(recs) {
					i = 0
				}
				_, _ = p.Record(recs[i])
				i++
			}
		})
	}
}

// BenchmarkEvent projects the canonical events of a first export and of the
// next one (one op is one event): the event's object decoded, projected and
// encoded, and for an update the old record rebuilt and compared.
func BenchmarkEvent(b *testing.B) {
	docs := generated(b, "medium", 0, 1)
	ix0, ix1 := index(b, docs[0]), index(b, docs[1])
	type ev struct {
		e        pifu.Entity
		op       messages.Op
		obj, prv []byte
	}
	collect := func(prev, next []byte) []ev {
		var out []ev
		changes(b, prev, next, func(c diff.Change) {
			out = append(out, ev{c.Entity, messages.Op(c.Op), bytes.Clone(c.Object), bytes.Clone(c.Previous)})
		})
		return out
	}
	for _, tc := range []struct {
		name          string
		evs           []ev
		before, after *projection.Index
	}{
		{"first-export", collect(nil, docs[0]), ix0, ix0},
		{"next-export", collect(docs[0], docs[1]), ix0, ix1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := projector(b, profile(b, "contact"), tc.before, tc.after)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(tc.evs) {
					i = 0
				}
				e := tc.evs[i]
				if _, err := p.Event(e.e, e.op, e.obj, e.prv); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		// Decoded once, projected and encoded per vendor: the share of
		// each further vendor.
		var decoded []projection.Canonical
		for _, e := range tc.evs {
			c, err := projection.Decode(e.e, e.op, e.obj, e.prv)
			if err != nil {
				b.Fatal(err)
			}
			decoded = append(decoded, c)
		}
		b.Run(tc.name+"/decoded", func(b *testing.B) {
			p := projector(b, profile(b, "contact"), tc.before, tc.after)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(decoded) {
					i = 0
				}
				if _, err := p.Change(decoded[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
