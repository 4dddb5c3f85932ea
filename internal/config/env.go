package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/skolebuss/skolebuss/internal/auth"
)

// The environment variables Apply reads, and the field each overrides.
var envFields = []struct{ name, field string }{
	{"SKOLEBUSS_ENVIRONMENT", "environment"},
	{"SKOLEBUSS_ALLOW_PRODUCTION", "allow_production"},
	{"SKOLEBUSS_TOKEN_URL", "upstream.token_url"},
	{"SKOLEBUSS_API_BASE", "upstream.api_base"},
	{"SKOLEBUSS_NATS_URL", "nats.url"},
	{"SKOLEBUSS_NATS_CREDENTIALS", "nats.credentials_file"},
	{"SKOLEBUSS_NATS_USER", "nats.user"},
	{"SKOLEBUSS_NATS_PASSWORD_ENV", "nats.password_env"},
	{"SKOLEBUSS_NATS_DATA_DIR", "nats.embedded.data_dir"},
	{"SKOLEBUSS_NATS_REPLICAS", "nats.replicas"},
	{"SKOLEBUSS_OTLP_ENDPOINT", "telemetry.otlp_endpoint"},
	{"SKOLEBUSS_METRICS_ADDR", "telemetry.metrics_addr"},
	{"SKOLEBUSS_SAMPLE_RATIO", "telemetry.sample_ratio"},
	{"SKOLEBUSS_SPOOL_DIR", "publisher.spool_dir"},
	{"SKOLEBUSS_DELETE_THRESHOLD", "publisher.delete_threshold"},
}

// EnvVars lists the SKOLEBUSS_* variables Apply honours, for --help texts.
func EnvVars() []string {
	out := make([]string, len(envFields))
	for i, e := range envFields {
		out[i] = e.name + " (" + e.field + ")"
	}
	return out
}

// Apply overrides fields from SKOLEBUSS_* environment variables read through
// env (main passes os.Getenv; an empty value leaves the field alone). A value
// that does not parse is an error naming the variable. Call Validate after
// Apply and the flag overrides.
//
// SKOLEBUSS_NATS_USER and SKOLEBUSS_NATS_PASSWORD_ENV give one process its
// own NATS user with one shared config file: the latter is the name of the
// variable that holds the password (as nats.password_env), never the
// password. A value that is not an upper-case variable name (A-Z, 0-9, _) is
// refused without being echoed, as it may be the password itself.
func (c *Config) Apply(env func(string) string) error {
	var errs []error
	for _, e := range envFields {
		val := env(e.name)
		if val == "" {
			continue
		}
		bad := func(want string) { errs = append(errs, fmt.Errorf("%s=%q: not %s", e.name, val, want)) }
		switch e.field {
		case "environment":
			c.Environment = Environment(val)
		case "allow_production":
			b, err := strconv.ParseBool(val)
			if err != nil {
				bad("true or false")
				continue
			}
			c.AllowProduction = b
		case "upstream.token_url":
			c.Upstream.TokenURL = val
		case "upstream.api_base":
			c.Upstream.APIBase = val
		case "nats.url":
			c.NATS.URL = val
		case "nats.credentials_file":
			c.NATS.CredentialsFile = val
		case "nats.user":
			c.NATS.User = val
		case "nats.password_env":
			if !isEnvName(val) {
				errs = append(errs, fmt.Errorf("%s: not the name of an environment variable (A-Z, 0-9 and _; the value is not shown, as it may be a password)", e.name))
				continue
			}
			c.NATS.PasswordEnv = val
		case "nats.embedded.data_dir":
			c.NATS.Embedded.DataDir = val
		case "nats.replicas":
			n, err := strconv.Atoi(val)
			if err != nil {
				bad("a whole number")
				continue
			}
			c.NATS.Replicas = n
		case "telemetry.otlp_endpoint":
			c.Telemetry.OTLPEndpoint = val
		case "telemetry.metrics_addr":
			c.Telemetry.MetricsAddr = val
		case "telemetry.sample_ratio":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				bad("a number")
				continue
			}
			c.Telemetry.SampleRatio = f
		case "publisher.spool_dir":
			c.Publisher.SpoolDir = val
		case "publisher.delete_threshold":
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				bad("a number")
				continue
			}
			c.Publisher.DeleteThreshold = f
		}
	}
	return errors.Join(errs...)
}

// isEnvName reports whether s is an upper-case environment variable name.
func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ResolveSecrets fills each application's ClientSecret (unless a program set
// it already) and the NATS password and token, from the environment variable
// or the file the config names, read through env and readFile (main passes
// os.Getenv and os.ReadFile). A file's content is trimmed of surrounding
// white space. A missing or empty secret is an error naming the application
// and the variable or file, never the value. In production the sandbox's
// demo secret is refused.
func (c *Config) ResolveSecrets(env func(string) string, readFile func(string) ([]byte, error)) error {
	return c.resolve(env, readFile, true)
}

// ResolveNATSSecrets resolves the NATS password and token only: for the
// processes that never call the upstream (requester, publisher, operator
// commands), which then need no application secret in their environment.
func (c *Config) ResolveNATSSecrets(env func(string) string, readFile func(string) ([]byte, error)) error {
	return c.resolve(env, readFile, false)
}

func (c *Config) resolve(env func(string) string, readFile func(string) ([]byte, error), applications bool) error {
	var errs []error
	read := func(what, envName, file string) (auth.Secret, bool) {
		switch {
		case envName != "":
			s := env(envName)
			if s == "" {
				errs = append(errs, fmt.Errorf("%s: environment variable %s is not set or empty", what, envName))
				return "", false
			}
			return auth.Secret(s), true
		case file != "":
			b, err := readFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: secret file: %w", what, err))
				return "", false
			}
			s := strings.TrimSpace(string(b))
			if s == "" {
				errs = append(errs, fmt.Errorf("%s: secret file %s is empty", what, file))
				return "", false
			}
			return auth.Secret(s), true
		}
		return "", false
	}
	for i := range c.Applications {
		if !applications {
			break
		}
		a := &c.Applications[i]
		if a.ClientSecret.IsZero() {
			if s, ok := read("application "+a.Name, a.ClientSecretEnv, a.ClientSecretFile); ok {
				a.ClientSecret = s
			} else if a.ClientSecretEnv == "" && a.ClientSecretFile == "" {
				errs = append(errs, fmt.Errorf("application %s: no client secret configured", a.Name))
			}
		}
		if c.Environment == Production && a.ClientSecret.Reveal() == DemoSecret {
			errs = append(errs, fmt.Errorf("application %s: the secret is the sandbox's public demo secret; production refuses it", a.Name))
		}
	}
	if s, ok := read("nats password", c.NATS.PasswordEnv, ""); ok {
		c.NATS.Password = s
	}
	if s, ok := read("nats token", c.NATS.TokenEnv, ""); ok {
		c.NATS.Token = s
	}
	return errors.Join(errs...)
}
