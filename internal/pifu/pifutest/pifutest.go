// Package pifutest checks in tests that a document is a valid PIFU-IMS 1.3
// export: the official schema (testdata/PIFU-IMS_SAS-1.3.xsd), applied by
// libxml2's xmllint. A missing xmllint fails the test, never skips it: a
// schema check that does not run must not pass.
package pifutest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// maxComplaint bounds the xmllint output a failure quotes.
const maxComplaint = 2000

// SchemaPath is the path of the official PIFU-IMS 1.3 schema.
func SchemaPath(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("pifutest: cannot locate its source file to find the schema")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "PIFU-IMS_SAS-1.3.xsd")
}

// SchemaErrors validates doc against the PIFU-IMS 1.3 schema and returns
// xmllint's complaint (its first 2000 bytes), or "" when doc validates. It
// fails the test if xmllint is not installed or cannot be run.
func SchemaErrors(t testing.TB, doc []byte) string {
	t.Helper()
	lint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Fatalf("xmllint is not installed (apt-get install libxml2-utils); the PIFU schema checks need it: %v", err)
	}
	schema := SchemaPath(t)
	if _, err := os.Stat(schema); err != nil {
		t.Fatalf("the PIFU schema: %v", err)
	}
	f := filepath.Join(t.TempDir(), "export.xml")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lint, "--noout", "--schema", schema, f).CombinedOutput()
	if err == nil {
		return ""
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("run xmllint: %v", err)
	}
	if len(out) > maxComplaint {
		out = out[:maxComplaint]
	}
	return string(out) + err.Error()
}

// Validate fails the test when doc, named name in the failure, does not
// validate against the PIFU-IMS 1.3 schema.
func Validate(t testing.TB, name string, doc []byte) {
	t.Helper()
	if msg := SchemaErrors(t, doc); msg != "" {
		t.Fatalf("%s does not validate against the PIFU schema:\n%s", name, msg)
	}
}
