package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One shared file, its NATS user replaced per process by the environment:
// the process connects as that user with the password from the variable
// SKOLEBUSS_NATS_PASSWORD_ENV names, and not with the file's.
func TestApplyNATSUserFromEnvironment(t *testing.T) {
	f := filepath.Join(t.TempDir(), "shared.yaml")
	yaml := `upstream:
  token_url: http://127.0.0.1:8765/connect/token
  api_base: http://127.0.0.1:8765
applications:
  - name: app
    client_id: app
    client_secret_env: APP_SECRET
    scopes: [vfsapi:lmsexport]
nats:
  url: nats://n1:4222
  user: operator
  password_env: OPERATOR_PASSWORD
`
	if err := os.WriteFile(f, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"SKOLEBUSS_NATS_USER":         "fetcher",
		"SKOLEBUSS_NATS_PASSWORD_ENV": "FETCHER_PASSWORD",
		"FETCHER_PASSWORD":            "pw-fetcher",
		"OPERATOR_PASSWORD":           "pw-operator",
	}
	getenv := func(k string) string { return env[k] }
	if err := c.Apply(getenv); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ResolveNATSSecrets(getenv, os.ReadFile); err != nil {
		t.Fatal(err)
	}
	b := c.NATS
	if b.User != "fetcher" || b.Password.Reveal() != "pw-fetcher" {
		t.Errorf("connects as %q with the password of %s, want fetcher with FETCHER_PASSWORD's",
			b.User, map[string]string{"pw-fetcher": "FETCHER_PASSWORD", "pw-operator": "OPERATOR_PASSWORD"}[b.Password.Reveal()])
	}

	// The variable it names must be set: the error names it, not a value.
	delete(env, "FETCHER_PASSWORD")
	c2, _ := Load(f)
	if err := c2.Apply(getenv); err != nil {
		t.Fatal(err)
	}
	err = c2.ResolveNATSSecrets(getenv, os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "FETCHER_PASSWORD is not set") {
		t.Errorf("unset password variable: %v", err)
	}

	// Without either variable the file's user stays.
	c3, _ := Load(f)
	if err := c3.Apply(func(string) string { return "" }); err != nil || c3.NATS.User != "operator" || c3.NATS.PasswordEnv != "OPERATOR_PASSWORD" {
		t.Errorf("no variables: user %q, password_env %q, %v", c3.NATS.User, c3.NATS.PasswordEnv, err)
	}
}

// A user from the environment is checked like one from the file: it needs
// a password variable, and it excludes a token.
func TestApplyNATSUserIsValidated(t *testing.T) {
	c := Default()
	c.Applications[0].ClientSecret = "x"
	c.NATS.URL = "nats://n1:4222"
	if err := c.Apply(func(k string) string { return map[string]string{"SKOLEBUSS_NATS_USER": "fetcher"}[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `nats.password_env: user "fetcher" needs password_env`) {
		t.Errorf("a user without a password variable: %v", err)
	}
	c = Default()
	c.Applications[0].ClientSecret = "x"
	c.NATS.URL, c.NATS.TokenEnv = "nats://n1:4222", "NATS_TOKEN"
	env := map[string]string{"SKOLEBUSS_NATS_USER": "fetcher", "SKOLEBUSS_NATS_PASSWORD_ENV": "FETCHER_PASSWORD"}
	if err := c.Apply(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "set at most one of") {
		t.Errorf("a user and a token: %v", err)
	}
}

// SKOLEBUSS_NATS_PASSWORD_ENV holding something that is no variable name
// (most likely the password itself, put there by mistake) is refused, and
// the error, however printed, does not carry it.
func TestApplyNATSPasswordEnvIsANameNeverEchoed(t *testing.T) {
	for _, val := range []string{"s3cret-Pa55!", "fetcher_password", "9LIVES", "A B"} {
		c := Default()
		err := c.Apply(func(k string) string {
			return map[string]string{"SKOLEBUSS_NATS_PASSWORD_ENV": val}[k]
		})
		if err == nil || !strings.Contains(err.Error(), "SKOLEBUSS_NATS_PASSWORD_ENV: not the name of an environment variable") {
			t.Errorf("%q: %v, want it refused", val, err)
			continue
		}
		if s := fmt.Sprintf("%v %+v %s", err, err, err); strings.Contains(s, val) {
			t.Errorf("the error shows the value %q: %s", val, s)
		}
		if c.NATS.PasswordEnv != "" {
			t.Errorf("%q: password_env set to %q anyway", val, c.NATS.PasswordEnv)
		}
	}
	vars := strings.Join(EnvVars(), " ")
	for _, want := range []string{"SKOLEBUSS_NATS_USER (nats.user)", "SKOLEBUSS_NATS_PASSWORD_ENV (nats.password_env)"} {
		if !strings.Contains(vars, want) {
			t.Errorf("EnvVars lacks %s: %s", want, vars)
		}
	}
}
