package diff_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// decodeAll parses a whole document.
func decodeAll(t testing.TB, doc []byte) []pifu.Record {
	t.Helper()
	d := pifu.NewDecoder(bytes.NewReader(doc))
	var out []pifu.Record
	for {
		r, err := d.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

// runDocs diffs document next against document prev (nil for a first
// export), reading both through the real streaming decoder.
func runDocs(t testing.TB, cfg diff.Config, prevDoc, nextDoc []byte) outcome {
	t.Helper()
	var o outcome
	cfg.SpoolDir = t.TempDir()
	in := diff.Input{Tenant: tenant, ExportID: "next", Next: pifu.NewDecoder(bytes.NewReader(nextDoc)),
		OpenPrev: func(context.Context) (diff.RecordReader, io.Closer, error) {
			o.opens++
			return pifu.NewDecoder(bytes.NewReader(prevDoc)), closer{&o.closes}, nil
		}}
	if prevDoc != nil {
		in.Prev = mustSnapshot(t, decodeAll(t, prevDoc), "prev")
	}
	o.res, o.err = diff.Run(context.Background(), cfg, in, func(_ context.Context, c diff.Change) error {
		o.changes = append(o.changes, c)
		return nil
	})
	assertSpoolEmpty(t, cfg.SpoolDir)
	return o
}

func TestExampleDocument(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "testdata", "example-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	recs := decodeAll(t, doc)
	first := runDocs(t, diff.Config{}, nil, doc)
	if first.err != nil {
		t.Fatal(first.err)
	}
	assertChanges(t, first.changes, oracle(t, nil, recs))
	if len(first.changes) != len(recs) || first.res.Counts[pifu.EntityOrg].Created != 2 {
		t.Fatalf("%d changes for %d records; counts %+v", len(first.changes), len(recs), first.res.Counts)
	}

	// Generation N+1: a teacher renamed, a teaching group renamed, one role gone.
	next := strings.Replace(string(doc), "<fn>Ole Lærer</fn>", "<fn>Ole Lærer Berg</fn>", 1)
	next = strings.Replace(next, "<short>MAT 5A</short>", "<short>MATTE 5A</short>", 1)
	gone := `
    <member>
      <sourcedid><source>vfs@fjordvik.kommune.no</source><id>P-2001</id></sourcedid>
      <idtype>1</idtype>
      <role roletype="06"><status>1</status></role>
    </member>`
	if !strings.Contains(next, gone) {
		t.Fatal("the example changed: the contact teacher's membership is not where this test expects it")
	}
	next = strings.Replace(next, gone, "", 1)
	o := runDocs(t, diff.Config{}, doc, []byte(next))
	if o.err != nil {
		t.Fatal(o.err)
	}
	assertChanges(t, o.changes, oracle(t, recs, decodeAll(t, []byte(next))))
	var got []string
	for _, c := range o.changes {
		got = append(got, string(c.Entity)+" "+string(c.Op)+" "+string(c.Previous))
	}
	want := []string{
		`group updated {"short":"MAT 5A"}`,
		`person updated {"name":{"fn":"Ole Lærer","family":"Lærer","given":"Ole"}}`,
		`membership deleted `,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// And the same document again: nothing.
	if o := runDocs(t, diff.Config{}, []byte(next), []byte(next)); o.err != nil || len(o.changes) != 0 || o.opens != 0 {
		t.Fatalf("unchanged: %v, %d changes, %d opens", o.err, len(o.changes), o.opens)
	}
}
