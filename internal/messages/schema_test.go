package messages

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// schemaDir is where the JSON Schemas of the vendor-facing events live.
var schemaDir = filepath.Join("..", "..", "docs", "schemas")

// checker validates JSON documents against the schemas in schemaDir with a
// JSON Schema 2020-12 validator. The schemas are known by their names under
// SchemaBase, the URL ce-dataschema names, so that a $ref to a sibling file
// resolves to that file and nothing is fetched. Formats are asserted, not
// only noted; and a keyword that is not JSON Schema 2020-12's (a misspelt
// one, which a validator ignores) fails the compile, so a schema cannot
// silently stop being checked.
type checker struct {
	c       *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema
}

func newChecker(t testing.TB) *checker {
	t.Helper()
	c, err := schemaCompiler(schemaDir)
	if err != nil {
		t.Fatal(err)
	}
	return &checker{c: c, schemas: map[string]*jsonschema.Schema{}}
}

// schemaCompiler is a strict compiler that knows every schema in dir.
func schemaCompiler(dir string) (*jsonschema.Compiler, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	c.RegisterVocabulary(&jsonschema.Vocabulary{URL: "urn:skolebuss:known-keywords", Compile: knownKeywordsOnly})
	c.AssertVocabs()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no schemas in %s", dir)
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		url := SchemaBase + filepath.Base(f)
		if m, ok := doc.(map[string]any); ok && m["$id"] != url {
			return nil, fmt.Errorf("%s: $id %v, want %s", f, m["$id"], url)
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return c, nil
}

// keywords2020 are the keywords of JSON Schema 2020-12's vocabularies: core,
// applicator, unevaluated, validation, meta-data, format and content.
var keywords2020 = map[string]bool{
	"$schema": true, "$id": true, "$ref": true, "$anchor": true, "$dynamicRef": true, "$dynamicAnchor": true,
	"$vocabulary": true, "$comment": true, "$defs": true,
	"prefixItems": true, "items": true, "contains": true, "additionalProperties": true, "properties": true,
	"patternProperties": true, "dependentSchemas": true, "propertyNames": true, "if": true, "then": true, "else": true,
	"allOf": true, "anyOf": true, "oneOf": true, "not": true,
	"unevaluatedItems": true, "unevaluatedProperties": true,
	"type": true, "const": true, "enum": true, "multipleOf": true, "maximum": true, "exclusiveMaximum": true,
	"minimum": true, "exclusiveMinimum": true, "maxLength": true, "minLength": true, "pattern": true,
	"maxItems": true, "minItems": true, "uniqueItems": true, "maxContains": true, "minContains": true,
	"maxProperties": true, "minProperties": true, "required": true, "dependentRequired": true,
	"title": true, "description": true, "default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"examples":        true,
	"format":          true,
	"contentEncoding": true, "contentMediaType": true, "contentSchema": true,
}

// knownKeywordsOnly runs on every schema object the compiler meets and
// refuses one with a keyword outside keywords2020.
func knownKeywordsOnly(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
	var unknown []string
	for k := range obj {
		if !keywords2020[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("schema keywords %q are not JSON Schema 2020-12's", unknown)
	}
	return nil, nil
}

// validate checks doc (as json.Unmarshal into any decodes it) against schema
// file; it returns every violation, each as "at '<JSON pointer into doc>':
// <what>", in order.
func (c *checker) validate(file string, doc any) []string {
	s, ok := c.schemas[file]
	if !ok {
		var err error
		if s, err = c.c.Compile(SchemaBase + file); err != nil {
			return []string{fmt.Sprintf("schema %s: %v", file, err)}
		}
		c.schemas[file] = s
	}
	err := s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	// Every failed keyword of the error tree, but for the nodes that only
	// group their causes (the root, a $ref, an object's properties).
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch e.ErrorKind.(type) {
		case *kind.Schema, *kind.Group, *kind.Reference:
		default:
			one := *e
			one.Causes = nil
			out = append(out, one.Error())
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	sort.Strings(out)
	return out
}

// TestCheckerCatchesViolations makes sure the checker can fail: a schema
// test that can never fail proves nothing.
func TestCheckerCatchesViolations(t *testing.T) {
	c := newChecker(t)
	bad := map[string]any{
		"tenant":    "a.b",
		"export_id": "x",
		"object":    map[string]any{"sourcedid": map[string]any{"source": "s"}, "name": "Kari", "shoe_size": 42.0},
		"previous":  map[string]any{"nin": "01010112345"},
	}
	errs := c.validate("no.skolebuss.person.updated.v1.json", bad)
	for _, want := range []string{
		`at '/tenant': 'a.b' does not match pattern`,
		`at '/object/sourcedid': missing property 'id'`,
		`at '/object/name': got string, want object`,
		`at '/object': additional properties 'shoe_size' not allowed`,
		// The validator's location of a property name's error is not
		// reliable (it names a sibling property at times): the name is.
		`invalid propertyName 'nin'`,
	} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no violation %q in\n  %s", want, strings.Join(errs, "\n  "))
		}
	}
}

// The marks of a membership and the findings of a boundary are checked:
// an unknown mark, an unknown kind and a zero count are refused.
func TestCheckerCatchesBadFindings(t *testing.T) {
	c := newChecker(t)
	member := map[string]any{
		"tenant": "t1", "export_id": "x",
		"object": map[string]any{"group": map[string]any{"source": "s", "id": "g"}, "member": map[string]any{"source": "s", "id": "p"},
			"roletype": "01", "status": "1", "incomplete": []any{"teacher", "group", "group"}},
	}
	errs := c.validate("no.skolebuss.membership.created.v1.json", member)
	for _, want := range []string{`at '/object/incomplete/0': value must be one of`, `at '/object/incomplete': items at 1 and 2 are equal`} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no violation %q in\n  %s", want, strings.Join(errs, "\n  "))
		}
	}
	boundary := map[string]any{"tenant": "t1", "export_id": "x", "counts": map[string]any{},
		"findings": map[string]any{"dangling-reference": 1.0, "group-member": 0.0}}
	errs = c.validate("no.skolebuss.export.started.v1.json", boundary)
	for _, want := range []string{`invalid propertyName 'dangling-reference'`, `at '/findings/group-member': minimum: got 0, want 1`} {
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("no violation %q in\n  %s", want, strings.Join(errs, "\n  "))
		}
	}
}

// A schema keyword outside JSON Schema 2020-12, here a misspelt minLength
// that a validator would ignore, fails the compile.
func TestCheckerRefusesUnknownKeywords(t *testing.T) {
	dir := t.TempDir()
	schema := `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "` + SchemaBase + `x.json",
		"type": "object", "properties": {"tenant": {"type": "string", "minLenght": 1}}}`
	if err := os.WriteFile(filepath.Join(dir, "x.json"), []byte(schema), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := schemaCompiler(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Compile(SchemaBase + "x.json")
	if err == nil || !strings.Contains(err.Error(), "minLenght") {
		t.Fatalf("a schema with a misspelt keyword compiled: %v", err)
	}
}

// The request and reply schemas refuse what the code refuses.
func TestResyncSchemasRefuse(t *testing.T) {
	c := newChecker(t)
	for _, tc := range []struct {
		file string
		doc  any
	}{
		{"no.skolebuss.resync.request.v1.json", map[string]any{"reason": strings.Repeat("x", MaxResyncReason+1)}},
		{"no.skolebuss.resync.request.v1.json", map[string]any{"vendor": "other"}},
		{"no.skolebuss.resync.reply.v1.json", map[string]any{"accepted": true}},
		{"no.skolebuss.resync.reply.v1.json", map[string]any{"accepted": false, "resync_id": "x"}},
		{"no.skolebuss.resync.reply.v1.json", map[string]any{"accepted": false, "error": "no", "resync_id": "x"}},
	} {
		if errs := c.validate(tc.file, tc.doc); len(errs) == 0 {
			t.Errorf("%s accepts %v", tc.file, tc.doc)
		}
	}
}
