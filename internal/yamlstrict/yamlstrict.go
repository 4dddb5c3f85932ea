// Package yamlstrict reads a configuration file written in YAML strictly:
// one document, a mapping at the top, no field its Go type does not have, no
// value of the wrong type; every error says where, as
// "file:line: field.path: what is wrong", one a line.
//
// The type and field checks walk the parsed document against the Go type, so
// each error comes with its node's line and field path and is worded from
// the Go type ("is not a duration like 90s or 1h"), not rewritten from
// yaml.v3's Go-flavoured text. Only a syntax error is yaml.v3's own message,
// with its "yaml: line N:" turned into the file and line: the parser has no
// typed error to read them from.
package yamlstrict

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Document is one parsed YAML file: its name, its top node and the line of
// every field path in it ("tenants[1].schedule.interval"). It is not safe for
// concurrent use while Decode runs.
type Document struct {
	name  string
	data  []byte
	top   *yaml.Node
	lines map[string]int
}

// Parse parses data, the content of the file called name, as exactly one
// YAML document.
func Parse(name string, data []byte) (*Document, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(name, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", name)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first, extra yaml.Node
	if err := dec.Decode(&first); err != nil {
		return nil, syntaxError(name, err)
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: a second YAML document; the file is one document", name, extra.Line)
	}
	d := &Document{name: name, data: data, top: root.Content[0], lines: map[string]int{}}
	d.index(d.top, "")
	return d, nil
}

// Name is the file's name, as given to Parse.
func (d *Document) Name() string { return d.name }

// Top is the document's top node.
func (d *Document) Top() *yaml.Node { return d.top }

// Lines maps every field path of the file to the line of its key (of its
// node, for an element of a list). The map is the Document's own.
func (d *Document) Lines() map[string]int { return d.lines }

// Line is the line of path, or of its nearest parent in the file (a missing
// field is reported at its parent); 1 when none is.
func (d *Document) Line(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 1
}

// Errorf is an error about the field at path: "file:line: path: message".
func (d *Document) Errorf(path, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s: %s", d.name, d.Line(path), path, fmt.Sprintf(format, args...))
}

// Fields calls fn for every key of every mapping in the file, parents first,
// with the key's path and line. fn returns false to skip the key's value.
func (d *Document) Fields(fn func(path, key string, line int) bool) {
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if fn(p, k.Value, k.Line) {
					walk(v, p)
				}
			}
		case yaml.SequenceNode:
			for i, e := range n.Content {
				walk(e, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(d.top, "")
}

// Decode decodes the document into out, a pointer to a struct. A field out's
// type does not have and a value of the wrong type are errors, all of them at
// once, one a line. Fields the file does not give keep the values out holds
// (its defaults).
func (d *Document) Decode(out any) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("yamlstrict: Decode needs a non-nil pointer, not %T", out)
	}
	var errs []error
	d.check(d.top, v.Type().Elem(), "", func(path string, line int, msg string) {
		if path == "" {
			errs = append(errs, fmt.Errorf("%s:%d: %s", d.name, line, msg))
		} else {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %s", d.name, line, path, msg))
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The checks passed: the decoder's strict mode is a second guard.
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		// A key given twice in one mapping is found here, as a
		// *yaml.TypeError of "line N: text" lines.
		return syntaxError(d.name, err)
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// check reports, through add, every key of n that t has no field for and
// every value of n that does not decode as its field's type.
func (d *Document) check(n *yaml.Node, t reflect.Type, path string, add func(path string, line int, msg string)) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null leaves the field as it is, whatever its type
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) ||
		n.Kind == yaml.ScalarNode && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		// The type reads itself: its error says what is wrong.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			add(path, n.Line, err.Error())
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		d.check(n, t.Elem(), path, add)
	case reflect.Interface:
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			add(path, n.Line, fmt.Sprintf("%s is not a mapping (%s)", shown(n), where(path)))
			return
		}
		fields := fieldsOf(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				add(p, k.Line, fmt.Sprintf("unknown field %q in %s", k.Value, where(path)))
				continue
			}
			d.check(v, ft, p, add)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			add(path, n.Line, shown(n)+" is not a list")
			return
		}
		for i, e := range n.Content {
			d.check(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", add)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			add(path, n.Line, shown(n)+" is not a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := k.Decode(reflect.New(t.Key()).Interface()); err != nil {
				add(join(path, k.Value), k.Line, shown(k)+" is not "+kindOf(t.Key()))
				continue
			}
			d.check(v, t.Elem(), join(path, k.Value), add)
		}
	default:
		if n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil {
			add(path, n.Line, shown(n)+" is not "+kindOf(t))
		}
	}
}

// fieldsOf maps the YAML names of t's fields to their types, as yaml.v3
// names them: the yaml tag's name, else the field's name in lower case;
// "-" is no field, ",inline" brings in the fields of the inlined struct.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fieldsOf(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// kindOf says in words what a value of t is.
func kindOf(t reflect.Type) string {
	if t == durationType {
		return "a duration like 90s or 1h"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number from 0"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

// shown is a node as an error shows it: a scalar quoted and cut to ten
// characters (a secret put in the wrong field is not printed whole), else
// its kind.
func shown(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 10 {
			v = v[:7] + "..."
		}
		return strconv.Quote(v)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "the value"
}

// where names the mapping at path in an error.
func where(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// index records the line of every field path: a key's line for a field, a
// node's line for an element of a list.
func (d *Document) index(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			d.index(v, p)
			d.lines[p] = k.Line
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.lines[p] = e.Line
			d.index(e, p)
		}
	}
}

// syntaxError turns yaml.v3's "yaml: line 3: mapping values are not
// allowed in this context" into "file:3: mapping values are not allowed in
// this context".
func syntaxError(name string, err error) error {
	// A key given twice in one mapping comes as a *yaml.TypeError, one
	// "line N: text" a problem: each becomes a line of its own.
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		lines := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			lines[i] = syntaxError(name, errors.New(e)).Error()
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return fmt.Errorf("%s:%d: %s", name, line, text)
			}
		}
	}
	return fmt.Errorf("%s: %s", name, msg)
}
