package sandbox

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/skolebuss/skolebuss/internal/yamlstrict"
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
	doc, err := yamlstrict.Parse(path, data)
	if err != nil {
		return Config{}, err
	}
	var cfg Config
	if err := doc.Decode(&cfg); err != nil {
		return Config{}, err
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
		return Config{}, locate(doc, errors.Join(errs...))
	}
	return cfg, nil
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return ""
}

// locate prefixes every *FieldError in err with the file and line.
func locate(doc *yamlstrict.Document, err error) error {
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
			out = append(out, fmt.Errorf("%s:%d: %w", doc.Name(), doc.Line(fe.Path), e))
			return
		}
		out = append(out, fmt.Errorf("%s: %w", doc.Name(), e))
	}
	walk(err)
	return errors.Join(out...)
}
