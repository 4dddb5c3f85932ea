package diff_test

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
)

// With Input.Borrow, an emit that copies what it keeps gets the very
// changes it gets without, while Run reuses the objects' memory.
func TestBorrowGivesTheSameChanges(t *testing.T) {
	m0 := newMuni(4, 2, 3, 6)
	r0, r1 := m0.records(), nextGeneration(m0).records()
	s0 := mustSnapshot(t, r0, "e0")
	want := runDiff(t, diff.Config{}, s0, r0, r1, "e1")
	if want.err != nil {
		t.Fatal(want.err)
	}
	var got []diff.Change
	reused := 0
	seen := map[*byte]bool{}
	in := diff.Input{Tenant: tenant, ExportID: "e1", Prev: s0, Next: reader(r1), Borrow: true,
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			return reader(r0), io.NopCloser(nil), nil
		}}
	res, err := diff.Run(context.Background(), diff.Config{SpoolDir: t.TempDir()}, in, func(_ context.Context, c diff.Change) error {
		if seen[&c.Object[0]] {
			reused++
		}
		seen[&c.Object[0]] = true
		c.Object, c.Previous = bytes.Clone(c.Object), bytes.Clone(c.Previous)
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Emitted != want.res.Emitted || len(got) != len(want.changes) {
		t.Fatalf("%d changes with Borrow, %d without", len(got), len(want.changes))
	}
	for i := range got {
		w := want.changes[i]
		if len(w.Previous) == 0 {
			w.Previous = nil
		}
		if len(got[i].Previous) == 0 {
			got[i].Previous = nil
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Fatalf("change %d with Borrow:\n%+v\nwithout:\n%+v", i, got[i], w)
		}
	}
	creations := 0
	for _, c := range got {
		if c.Op == diff.Created || c.Op == diff.Updated {
			creations++
		}
	}
	if creations > 2 && reused == 0 {
		t.Errorf("Borrow reused no object's memory in %d changes", len(got))
	}
}
