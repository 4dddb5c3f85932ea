package config

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/yamlstrict"
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
	doc, err := yamlstrict.Parse(name, data)
	if err != nil {
		return nil, err
	}
	if doc.Top().Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the file must be a mapping of sections (environment, upstream, ...)", name, doc.Top().Line)
	}
	var inline []string
	doc.Fields(func(path, key string, line int) bool {
		parent := strings.TrimSuffix(strings.TrimSuffix(path, key), ".")
		if instead, ok := secretKeys[key]; ok && (strings.HasPrefix(parent, "applications[") || parent == "nats") {
			inline = append(inline, fmt.Sprintf("%s:%d: %s: an inline secret is refused; use %s", name, line, path, instead))
			return false
		}
		return true
	})
	if len(inline) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(inline, "\n"))
	}
	c := base()
	if err := doc.Decode(&c); err != nil {
		return nil, err
	}
	c.file, c.lines = name, doc.Lines()
	c.Normalize()
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

// Normalize writes every tenant id that is a UUID in any case in its
// canonical lower-case form (messages.NormalizeTenant), in the tenants and
// in the vendors' lists; Parse calls it before Validate, which refuses
// every other spelling. An id that is not a UUID is left for Validate to
// name.
func (c *Config) Normalize() {
	for i := range c.Tenants {
		c.Tenants[i].ID = normalTenant(c.Tenants[i].ID)
	}
	for i := range c.Vendors {
		for j, t := range c.Vendors[i].Tenants {
			c.Vendors[i].Tenants[j] = normalTenant(t)
		}
	}
}

func normalTenant(id string) string {
	if t, err := messages.NormalizeTenant(id); err == nil {
		return t
	}
	return id
}
