package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LoadConfig reads a sandbox config file strictly: unknown fields, wrong
// types, several documents and invalid values are refused. Every error names
// the file, the line and the field ("sandbox.yaml:12: applications[0].quota.daily:
// must not be negative"). Secrets given by client_secret_file are read here
// (a path relative to the config file's directory). Defaults are applied.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("sandbox config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, yamlError(path, err)
	}
	if len(root.Content) == 0 {
		return Config{}, fmt.Errorf("%s: empty file", path)
	}
	lines := newLineIndex(root.Content[0])

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, typeErrors(path, lines, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return Config{}, fmt.Errorf("%s:%d: a second YAML document; the config is one document", path, extra.Line)
	}

	var errs []error
	for i := range cfg.Applications {
		a := &cfg.Applications[i]
		if a.ClientSecretFile == "" {
			continue
		}
		p := fmt.Sprintf("applications[%d].client_secret_file", i)
		if a.ClientSecret != "" {
			errs = append(errs, fieldErr(p, "give client_secret or client_secret_file, not both"))
			continue
		}
		sf := a.ClientSecretFile
		if !strings.HasPrefix(sf, "/") {
			sf = dirOf(path) + sf
		}
		b, err := os.ReadFile(sf)
		if err != nil {
			errs = append(errs, fieldErr(p, "cannot read the secret file: %v", err))
			continue
		}
		a.ClientSecret = strings.TrimSpace(string(b))
		if a.ClientSecret == "" {
			errs = append(errs, fieldErr(p, "the secret file %s is empty", sf))
		}
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, locate(path, lines, errors.Join(errs...))
	}
	return cfg, nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return ""
}

// lineIndex maps field paths ("applications[0].quota.daily") to lines and
// lines to the first path on them.
type lineIndex struct {
	byPath map[string]int
	byLine map[int]string
}

func newLineIndex(doc *yaml.Node) *lineIndex {
	ix := &lineIndex{byPath: map[string]int{}, byLine: map[int]string{}}
	ix.walk(doc, "")
	return ix
}

func (ix *lineIndex) note(path string, line int) {
	ix.byPath[path] = line
	if _, ok := ix.byLine[line]; !ok && path != "" {
		ix.byLine[line] = path
	}
}

func (ix *lineIndex) walk(n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.AliasNode {
		ix.note(path, n.Line)
	} else if _, ok := ix.byPath[path]; !ok {
		ix.byPath[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			ix.note(p, k.Line)
			ix.walk(v, p)
			ix.byPath[p] = k.Line // the key's line names the field best
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			ix.walk(v, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// line finds the line of path, or of its nearest parent that is in the file
// (a missing field is reported at its parent).
func (ix *lineIndex) line(path string) int {
	for p := path; p != ""; {
		if l, ok := ix.byPath[p]; ok {
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

// locate prefixes every *FieldError in err with the file and line.
func locate(path string, ix *lineIndex, err error) error {
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fmt.Errorf("%s:%d: %w", path, ix.line(fe.Path), e))
			return
		}
		out = append(out, fmt.Errorf("%s: %w", path, e))
	}
	walk(err)
	return errors.Join(out...)
}

var (
	lineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// typeErrors rewrites yaml's decode errors as "file:line: field: message".
func typeErrors(path string, ix *lineIndex, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return yamlError(path, err)
	}
	var out []error
	for _, msg := range te.Errors {
		m := lineRE.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, fmt.Errorf("%s: %s", path, msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		field := ix.byLine[line]
		text := m[2]
		if u := unknownRE.FindStringSubmatch(text); u != nil {
			text = fmt.Sprintf("unknown field %q", u[1])
		}
		if field != "" {
			out = append(out, fmt.Errorf("%s:%d: %s: %s", path, line, field, text))
		} else {
			out = append(out, fmt.Errorf("%s:%d: %s", path, line, text))
		}
	}
	return errors.Join(out...)
}

// yamlError turns "yaml: line 3: mapping values are not allowed" into
// "file:3: mapping values are not allowed".
func yamlError(path string, err error) error {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRE.FindStringSubmatch(s); m != nil {
		return fmt.Errorf("%s:%s: %s", path, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", path, s)
}
