package projection_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

const tenant = "9b0f1e3a-0000-4000-8000-000000000001"

// generated writes the exports of generations gens of a municipality of the
// preset's size.
func generated(t testing.TB, preset string, gens ...uint64) [][]byte {
	t.Helper()
	sizes, err := rostergen.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Fjordvik kommune", Seed: 7, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, g := range gens {
		var buf bytes.Buffer
		if _, err := m.WriteExport(context.Background(), &buf, g); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, buf.Bytes())
	}
	return docs
}

// each calls fn with every record of doc, streaming.
func each(t testing.TB, doc []byte, fn func(pifu.Record)) {
	t.Helper()
	d := pifu.NewDecoder(bytes.NewReader(doc))
	for {
		r, err := d.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(r)
	}
}

func index(t testing.TB, doc []byte) *projection.Index {
	t.Helper()
	x := projection.NewIndex()
	each(t, doc, x.Add)
	return x.Build()
}

func profile(t testing.TB, parts ...string) projection.Profile {
	t.Helper()
	p, err := projection.ParseProfile(parts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func projector(t testing.TB, p projection.Profile, before, after projection.Relations) *projection.Projector {
	t.Helper()
	pr, err := projection.New(p, after)
	if err != nil {
		t.Fatal(err)
	}
	if err := pr.SetRelations(before, after); err != nil {
		t.Fatal(err)
	}
	return pr
}

// changes runs the diff of next against prev (nil: a first export) and
// calls fn with each canonical change, as the publisher emits them.
func changes(t testing.TB, prev, next []byte, fn func(diff.Change)) diff.Result {
	t.Helper()
	in := diff.Input{Tenant: tenant, ExportID: "next", Next: pifu.NewDecoder(bytes.NewReader(next)), Borrow: true,
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			return pifu.NewDecoder(bytes.NewReader(prev)), io.NopCloser(nil), nil
		}}
	if prev != nil {
		s, err := snapshotOf(prev)
		if err != nil {
			t.Fatal(err)
		}
		in.Prev = s
	}
	res, err := diff.Run(context.Background(), diff.Config{SpoolDir: t.TempDir(), DeleteThreshold: 1}, in,
		func(_ context.Context, c diff.Change) error {
			fn(c)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func snapshotOf(doc []byte) (*snapshot.Snapshot, error) {
	s, _, err := snapshot.FromRecords(tenant, "prev", pifu.NewDecoder(bytes.NewReader(doc)))
	return s, err
}
