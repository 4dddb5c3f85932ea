package config

import (
	"strings"
	"testing"
)

// A tenant id is taken in any case at the door and kept in lower case, the
// one form subjects and snapshots use; a vendor's list may name it in
// either case.
func TestTenantIDsAreLoweredAtTheDoor(t *testing.T) {
	const upper, lower = "AA750693-E3EA-441B-93FE-6A71A8371AFA", "aa750693-e3ea-441b-93fe-6a71a8371afa"
	c, err := Parse("door.yaml", []byte(`upstream:
  token_url: http://127.0.0.1:8765/connect/token
  api_base: http://127.0.0.1:8765
applications:
  - {name: app, client_id: app, client_secret_env: APP_SECRET, scopes: [vfsapi:lmsexport]}
tenants:
  - {id: `+upper+`, name: Fjordvik kommune, application: app}
vendors:
  - {name: lms-a, tenants: [`+lower+`], delivery: {nats: {}}}
  - {name: lms-b, tenants: [`+upper+`], delivery: {nats: {}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenants[0].ID != lower || c.Vendors[0].Tenants[0] != lower || c.Vendors[1].Tenants[0] != lower {
		t.Errorf("tenant ids not lowered: %q, %q, %q", c.Tenants[0].ID, c.Vendors[0].Tenants[0], c.Vendors[1].Tenants[0])
	}
	// The same id twice in two spellings is listed twice.
	c = Demo()
	c.Tenants = append(c.Tenants, Tenant{ID: strings.ToUpper(c.Tenants[0].ID), Application: c.Tenants[0].Application})
	c.Normalize()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "is listed twice") {
		t.Errorf("one tenant in two spellings: %v", err)
	}
	// Anything else than a UUID is refused, naming the form wanted.
	c = Demo()
	c.Tenants[0].ID = "fjordvik"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `tenants[0].id: tenant "fjordvik" is not a UUID`) {
		t.Errorf("non-UUID tenant: %v", err)
	}
}

func TestTenantNamesBoundedAndPlain(t *testing.T) {
	for name, want := range map[string]string{
		strings.Repeat("x", MaxNameLen+1): "at most 200",
		"Fjordvik\x00kommune":             "control character U+0000 at byte 8",
		"Fjord\nvik":                      "control character U+000A",
		"Fjordvik \u202ekommune":          "bidirectional control U+202E",
		"\u2066Fjordvik\u2069":            "bidirectional control U+2066",
		"Fjord\u200fvik":                  "bidirectional control U+200F",
		"Fjordvik \xff":                   "not valid UTF-8",
		"Fjordvik\u0085":                  "control character U+0085",
		"Fjordvik\u2028":                  "separator U+2028",
	} {
		c := Demo()
		c.Tenants[1].Name = name
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "tenants[1].name: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("name %.40q: %v; want an error about %q", name, err, want)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("name %.40q: error of %d bytes", name, len(err.Error()))
		}
	}
	c := Demo()
	c.Tenants[1].Name = "Måneby kommune – Øvre Ål, 北"
	if err := c.Validate(); err != nil {
		t.Errorf("a plain name refused: %v", err)
	}
}

// A password in the NATS URL would show in the process list and in the
// environment of every process; the refusal says what to use instead and
// never repeats the password.
func TestNATSURLWithCredentialsRefused(t *testing.T) {
	for _, u := range []string{"nats://alice:hunter2@nats-1:4222", "nats://nats-1:4222,tls://bob:hunter2@nats-2:4222", "nats://hunter2@nats-1:4222"} {
		c := Demo()
		c.NATS.URL = u
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "nats.url: ") || !strings.Contains(err.Error(), "credentials_file") ||
			!strings.Contains(err.Error(), "password_env") {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the secret: %v", u, err)
		}
	}
}
