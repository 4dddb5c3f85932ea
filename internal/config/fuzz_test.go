package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// urlPassword finds the password of a URL's user information.
var urlPassword = regexp.MustCompile(`://[^:/@\s]*:([^@/\s]+)@`)

// FuzzParse feeds any bytes to the configuration loader (yamlstrict and
// the validation). Bad input is an error whose every line names the file,
// and which never repeats an inline secret; what loads is valid, in the
// canonical form (normalising it again changes nothing), and loads the
// same every time.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/*.yaml", "../../deploy/skolebuss*.yaml"} {
		files, err := filepath.Glob(glob)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("tenants:\n  - {id: AA750693-E3EA-441B-93FE-6A71A8371AFA, name: \"x\\u202e\", application: a}\n"))
	f.Add([]byte("nats: {url: \"nats://u:hunter2@h:4222\"}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error line does not name the file: %q\nwhole error: %v", line, err)
				}
			}
			for _, m := range urlPassword.FindAllSubmatch(data, -1) {
				// A password that stands once in the input, in a URL's user
				// information, is a secret the error must not repeat
				// (the same text elsewhere, a key say, may be quoted).
				if pw := string(m[1]); len(pw) >= 4 && strings.Count(string(data), pw) == 1 && strings.Contains(err.Error(), pw) {
					t.Fatalf("the error shows the URL's password %q: %v", pw, err)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded but not valid: %v", err)
		}
		before := *c
		before.Tenants = append([]Tenant(nil), c.Tenants...)
		c.Normalize()
		if !reflect.DeepEqual(before.Tenants, c.Tenants) {
			t.Fatalf("normalising a loaded config changed it: %+v -> %+v", before.Tenants, c.Tenants)
		}
		again, err := Parse("fuzz.yaml", data)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("loads differently a second time: %v", err)
		}
	})
}
