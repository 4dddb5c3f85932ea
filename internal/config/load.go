package config

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

// Load reads and parses the file at path, fills defaults and validates the
// result. Every error names the file, and the line and the field where the
// file says it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for data read from a file named name.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(name, err, nil)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the file is empty", name)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of sections (environment, upstream, ...)", name, doc.Line)
	}
	lines := map[string]int{}
	var inline []string
	index(name, doc, "", lines, &inline)
	if len(inline) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(inline, "\n"))
	}
	c := base()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(name, err, lines)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s:%d: a second YAML document; the config is one document", name, extra.Line)
	}
	c.file, c.lines = name, lines
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// secretKeys are keys that would put a secret inline, and what to write
// instead.
var secretKeys = map[string]string{
	"client_secret": "client_secret_env (an environment variable's name) or client_secret_file",
	"password":      "password_env",
	"token":         "token_env",
}

// index records the line of every field path (tenants[1].schedule.interval)
// and collects the inline secrets it finds as errors of file name.
func index(name string, n *yaml.Node, path string, lines map[string]int, inline *[]string) {
	if path != "" {
		lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = k.Line
			if instead, ok := secretKeys[k.Value]; ok && (strings.HasPrefix(path, "applications[") || path == "nats") {
				*inline = append(*inline, fmt.Sprintf("%s:%d: %s: an inline secret is refused; use %s", name, k.Line, p, instead))
				continue
			}
			index(name, v, p, lines, inline)
			lines[p] = k.Line
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			index(name, e, path+"["+strconv.Itoa(i)+"]", lines, inline)
		}
	}
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError rewrites yaml.v3's errors as "file:line: field: message", one
// per line; the field is the path whose key sits on that line.
func yamlError(name string, err error, lines map[string]int) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			if m := yamlLine.FindStringSubmatch(e); m != nil {
				n, _ := strconv.Atoi(m[1])
				field := ""
				for p, l := range lines {
					if l == n && len(p) > len(field) {
						field = p
					}
				}
				if field != "" {
					field += ": "
				}
				msgs = append(msgs, fmt.Sprintf("%s:%s: %s%s", name, m[1], field, explain(m[2])))
			} else {
				msgs = append(msgs, name+": "+e)
			}
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", name, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", name, msg)
}

var (
	notFound = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)
	badValue = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// explain turns yaml.v3's Go-flavoured messages into the config's terms.
func explain(msg string) string {
	if m := notFound.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown field %q in %s", m[1], section(m[2]))
	}
	if m := badValue.FindStringSubmatch(msg); m != nil {
		want := m[3]
		switch want {
		case "time.Duration":
			want = "a duration like 90s or 1h"
		case "float64":
			want = "a number"
		case "int", "int64":
			want = "a whole number"
		case "bool":
			want = "true or false"
		case "string":
			want = "a string"
		default:
			if strings.HasPrefix(want, "[]") {
				want = "a list"
			} else if strings.HasPrefix(want, "config.") {
				want = "a mapping (" + section(strings.TrimPrefix(want, "config.")) + ")"
			}
		}
		return fmt.Sprintf("%q is not %s", m[2], want)
	}
	return msg
}

func section(goType string) string {
	switch goType {
	case "Config":
		return "the top level"
	case "Upstream":
		return "upstream"
	case "Application":
		return "an application"
	case "RateLimit":
		return "rate_limit"
	case "Quotas":
		return "quotas"
	case "Tenant":
		return "a tenant"
	case "Schedule":
		return "schedule"
	case "NATS":
		return "nats"
	case "Embedded":
		return "nats.embedded"
	case "Publisher":
		return "publisher"
	case "Telemetry":
		return "telemetry"
	}
	return goType
}
