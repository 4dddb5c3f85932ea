package pifutest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func example(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "example-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestValidExampleValidates(t *testing.T) {
	Validate(t, "example-full.xml", example(t))
}

func TestInvalidDocumentIsRefused(t *testing.T) {
	doc := bytes.Replace(example(t), []byte("<person>"), []byte("<nonsense/><person>"), 1)
	msg := SchemaErrors(t, doc)
	if msg == "" || !strings.Contains(msg, "nonsense") {
		t.Fatalf("a document with an unknown element: complaint %q", msg)
	}
}

// recorder is a testing.TB that records a failure instead of ending the
// test that uses it.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// A skip is recorded as one, so that the test below fails on it.
func (r *recorder) Skip(args ...any)                 { r.failed = "skipped"; panic(r) }
func (r *recorder) Skipf(format string, args ...any) { r.failed = "skipped"; panic(r) }
func (r *recorder) SkipNow()                         { r.failed = "skipped"; panic(r) }

// Without xmllint the check fails the test: it does not pass or skip.
func TestMissingXmllintFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		Validate(r, "example-full.xml", example(t))
	}()
	if !strings.Contains(r.failed, "xmllint is not installed") {
		t.Fatalf("without xmllint on the PATH: failure %q", r.failed)
	}
}
