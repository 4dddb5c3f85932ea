package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

func inspectCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"pifu", "inspect"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func repoTestdata(name string) string { return filepath.Join("..", "..", "testdata", name) }

func TestPifuInspectTable(t *testing.T) {
	code, out, errs := inspectCLI(t, repoTestdata("udir-example-full.xml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"full export from mitt-sas@måne.kommune.no at 2007-03-10T10:02:01",
		`(?m)^person +5$`,
		`(?m)^org +2$`,
		`(?m)^membership +18$`,
		`(?m)^kontaktlærergruppe +1$`,
		`(?m)^01 elev +9$`,
		`findings: 4, dangling-reference 4`,
		`udir-example-full.xml:1328:4: dangling-reference: refers to group "mitt-sas@måne.kommune.no global_ID_gr_Astr001_Måneflekken07"`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// No personal data: names and national ids stay out.
	for _, secret := range []string{"17097055655", "Janne", "Nordmann"} {
		if strings.Contains(out, secret) {
			t.Errorf("output shows %q", secret)
		}
	}
}

func TestPifuInspectCleanFile(t *testing.T) {
	code, out, _ := inspectCLI(t, repoTestdata("example-full.xml"))
	if code != 0 || !strings.Contains(out, "findings: none") || !strings.Contains(out, "13 records") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestPifuInspectJSON(t *testing.T) {
	code, out, errs := inspectCLI(t, "--json", repoTestdata("example-full.xml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep pifu.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Records != 13 || rep.Entities[pifu.EntityMembership] != 6 || rep.Roles["02"] != 2 ||
		rep.GroupTypes["undervisningsgruppe"] != 1 || rep.Properties.Type != "full" || len(rep.Findings) != 0 {
		t.Errorf("report = %+v", rep)
	}
}

func TestPifuInspectStdin(t *testing.T) {
	doc, err := os.ReadFile(repoTestdata("example-delta.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := pifuInspect(context.Background(), []string{"-"}, bytes.NewReader(doc), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "<stdin>: delta export from vfs@x.no") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestPifuInspectSyntaxError(t *testing.T) {
	doc, err := os.ReadFile(repoTestdata("example-full.xml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.xml")
	if err := os.WriteFile(path, doc[:bytes.Index(doc, []byte("<!-- teacher -->"))], 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := inspectCLI(t, path)
	want := path + ":29:3: the document does not parse: unexpected end of document: <enterprise> is not closed"
	if code != 1 || !strings.Contains(errs, want) || out != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errs, want)
	}
}

func TestPifuInspectUsage(t *testing.T) {
	if code, _, errs := inspectCLI(t); code != 2 || !strings.Contains(errs, "want one FILE") {
		t.Errorf("no file: exit %d, %s", code, errs)
	}
	if code, _, errs := inspectCLI(t, "--help"); code != 0 || !strings.Contains(errs, "Usage: skolebuss pifu inspect") || !strings.Contains(errs, "-json") {
		t.Errorf("--help: exit %d, %s", code, errs)
	}
	if code, _, _ := inspectCLI(t, "/nonexistent/file.xml"); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}
