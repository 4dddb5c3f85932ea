package messages

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaDir is where the JSON Schemas of the vendor-facing events live.
var schemaDir = filepath.Join("..", "..", "docs", "schemas")

// checker validates JSON documents against the subset of JSON Schema 2020-12
// our schemas use: type, required, properties, additionalProperties, items,
// $ref (within a file and to a sibling file), enum, minLength, maxLength,
// pattern, minimum, minProperties, propertyNames. A keyword outside that
// subset fails the check, so a schema cannot silently stop being checked.
type checker struct {
	dir   string
	files map[string]map[string]any
}

var knownKeywords = map[string]bool{
	"$schema": true, "$id": true, "$defs": true, "title": true, "description": true,
	"type": true, "required": true, "properties": true, "additionalProperties": true, "items": true,
	"$ref": true, "enum": true, "minLength": true, "maxLength": true, "pattern": true, "minimum": true,
	"minProperties": true, "propertyNames": true,
}

func (c *checker) load(file string) (map[string]any, error) {
	if s, ok := c.files[file]; ok {
		return s, nil
	}
	b, err := os.ReadFile(filepath.Join(c.dir, file))
	if err != nil {
		return nil, err
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c.files[file] = s
	return s, nil
}

// validate checks doc against schema file; it returns every violation.
func (c *checker) validate(file string, doc any) []string {
	root, err := c.load(file)
	if err != nil {
		return []string{err.Error()}
	}
	var errs []string
	c.check(file, root, root, doc, "$", &errs)
	return errs
}

func (c *checker) resolve(file string, ref string) (string, map[string]any, error) {
	target, frag, _ := strings.Cut(ref, "#")
	if target == "" {
		target = file
	}
	root, err := c.load(target)
	if err != nil {
		return "", nil, err
	}
	node := any(root)
	for _, p := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if p == "" {
			continue
		}
		m, ok := node.(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("bad $ref %s", ref)
		}
		node = m[p]
	}
	m, ok := node.(map[string]any)
	if !ok {
		return "", nil, fmt.Errorf("$ref %s does not resolve", ref)
	}
	return target, m, nil
}

func (c *checker) check(file string, root, s map[string]any, v any, path string, errs *[]string) {
	fail := func(format string, args ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, args...)) }
	for k := range s {
		if !knownKeywords[k] {
			fail("schema keyword %q is not supported by this checker", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		f, sub, err := c.resolve(file, ref)
		if err != nil {
			fail("%v", err)
			return
		}
		c.check(f, root, sub, v, path, errs)
	}
	if t, ok := s["type"].(string); ok && !hasType(t, v) {
		fail("want %s, got %T", t, v)
		return
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return e == v }) {
		fail("%v is not one of %v", v, enum)
	}
	switch x := v.(type) {
	case string:
		if n, ok := s["minLength"].(float64); ok && float64(len([]rune(x))) < n {
			fail("shorter than %v", n)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(x))) > n {
			fail("longer than %v", n)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			fail("%q does not match %s", x, p)
		}
	case float64:
		if n, ok := s["minimum"].(float64); ok && x < n {
			fail("%v is below %v", x, n)
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				c.check(file, root, items, e, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case map[string]any:
		for _, r := range asStrings(s["required"]) {
			if _, ok := x[r]; !ok {
				fail("required property %q is missing", r)
			}
		}
		if n, ok := s["minProperties"].(float64); ok && float64(len(x)) < n {
			fail("fewer than %v properties", n)
		}
		props, _ := s["properties"].(map[string]any)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if pn, ok := s["propertyNames"].(map[string]any); ok {
				c.check(file, root, pn, k, path+".<name "+k+">", errs)
			}
			if ps, ok := props[k].(map[string]any); ok {
				c.check(file, root, ps, x[k], path+"."+k, errs)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q is not allowed", k)
				}
			case map[string]any:
				c.check(file, root, ap, x[k], path+"."+k, errs)
			}
		}
	}
}

func hasType(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestCheckerCatchesViolations makes sure the checker can fail: a schema
// test that can never fail proves nothing.
func TestCheckerCatchesViolations(t *testing.T) {
	c := &checker{dir: schemaDir, files: map[string]map[string]any{}}
	bad := map[string]any{
		"tenant":    "a.b",
		"export_id": "x",
		"object":    map[string]any{"sourcedid": map[string]any{"source": "s"}, "name": "Kari", "shoe_size": 42.0},
		"previous":  map[string]any{"nin": "01010112345"},
	}
	errs := c.validate("no.skolebuss.person.updated.v1.json", bad)
	for _, want := range []string{
		`$.tenant: "a.b" does not match`,
		`$.object.sourcedid: required property "id" is missing`,
		`$.object.name: want object`,
		`$.object: property "shoe_size" is not allowed`,
		`$.previous.<name nin>: nin is not one of`,
	} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.HasPrefix(e, want) }) {
			t.Errorf("no violation %q in %q", want, errs)
		}
	}
}
