package diff_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/rostergen"
)

func generated(t testing.TB, preset string, gens ...uint64) (*rostergen.Municipality, [][]byte) {
	t.Helper()
	sizes, err := rostergen.Preset(preset)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{TenantID: "9b0f1e3a-0000-4000-8000-000000000001", Name: "Fjordvik kommune",
		Seed: 7, Sizes: sizes})
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
	return m, docs
}

func TestGeneratedMunicipality(t *testing.T) {
	m, docs := generated(t, "small", 0, 1)
	r0, r1 := decodeAll(t, docs[0]), decodeAll(t, docs[1])

	first := runDocs(t, diff.Config{}, nil, docs[0])
	if first.err != nil {
		t.Fatal(first.err)
	}
	st := m.Stats(0)
	want := map[pifu.Entity]int{pifu.EntityOrg: st.Orgs, pifu.EntityGroup: st.Groups,
		pifu.EntityPerson: st.Persons, pifu.EntityMembership: st.Memberships}
	for e, n := range want {
		if c := first.res.Counts[e]; c.Created != n || c.Changes() != n || c.Duplicates != 0 {
			t.Errorf("first export, %s: %+v, want %d created", e, c, n)
		}
	}
	assertChanges(t, first.changes, oracle(t, nil, r0))

	next := runDocs(t, diff.Config{}, docs[0], docs[1])
	if next.err != nil {
		t.Fatal(next.err)
	}
	tot := next.res.Total()
	t.Logf("generation 0 to 1: %+v", tot)
	if tot.Created == 0 || tot.Updated == 0 || tot.Deleted == 0 {
		t.Fatalf("the generator's churn should create, update and delete: %+v", tot)
	}
	assertChanges(t, next.changes, oracle(t, r0, r1))
	if want := mustSnapshot(t, r1, "next"); next.res.Snapshot.Checksum() != want.Checksum() {
		t.Fatal("the snapshot after generation 1 is not generation 1's")
	}
	for _, c := range next.changes {
		if c.Op == diff.Updated && len(c.Previous) < 3 {
			t.Fatalf("update of %s %s without previous values", c.Entity, c.Key)
		}
	}

	same := runDocs(t, diff.Config{}, docs[1], docs[1])
	if same.err != nil || len(same.changes) != 0 || same.opens != 0 {
		t.Fatalf("unchanged: %v, %d changes, %d opens", same.err, len(same.changes), same.opens)
	}
}

// BenchmarkGeneratedParseOnly and BenchmarkGeneratedDiffUnchanged compare,
// on the generated medium municipality, parsing alone with the diff of an
// unchanged re-export (parse + hash + compare).
func BenchmarkGeneratedParseOnly(b *testing.B) {
	_, docs := generated(b, "medium", 3)
	b.SetBytes(int64(len(docs[0])))
	n := 0
	for b.Loop() {
		d := pifu.NewDecoder(bytes.NewReader(docs[0]))
		n = 0
		for {
			if _, err := d.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	b.ReportMetric(float64(n), "records")
}

func BenchmarkGeneratedDiffUnchanged(b *testing.B) {
	_, docs := generated(b, "medium", 3)
	prev := mustSnapshot(b, decodeAll(b, docs[0]), "e0")
	cfg := diff.Config{SpoolDir: b.TempDir()}
	b.SetBytes(int64(len(docs[0])))
	for b.Loop() {
		res, err := diff.Run(context.Background(), cfg, diff.Input{Tenant: tenant, ExportID: "e1", Prev: prev,
			Next: pifu.NewDecoder(bytes.NewReader(docs[0]))}, func(context.Context, diff.Change) error {
			b.Fatal("change in an unchanged export")
			return nil
		})
		if err != nil || res.Total().Unchanged != prev.Len() {
			b.Fatalf("%v, %+v", err, res.Total())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*prev.Len()), "ns/record")
}
