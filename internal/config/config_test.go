package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/projection"
)

func TestBadFilesRefused(t *testing.T) {
	// Each bad file is refused with file:line and the field named.
	want := map[string]struct {
		line  int
		field string
	}{
		"unknown-field.bad.yaml":               {5, `upstream.tenant_parm: unknown field "tenant_parm" in upstream`},
		"metrics-addr.bad.yaml":                {13, `telemetry.metrics_addr: "no-port-here" is not host:port`},
		"inline-secret.bad.yaml":               {7, "applications[0].client_secret: an inline secret is refused; use client_secret_env"},
		"bad-duration.bad.yaml":                {13, `tenants[0].schedule.interval: "one hour" is not a duration like 90s or 1h`},
		"hostile-tenant.bad.yaml":              {12, `tenants[1].id: tenant "evil.>" contains a dot`},
		"tenant-not-uuid.bad.yaml":             {10, `tenants[0].id: tenant "fjordvik" is not a UUID`},
		"tenant-name-bidi.bad.yaml":            {11, `tenants[0].name: "Fjordvik \u202eenummok" has the bidirectional control U+202E at byte 9`},
		"nats-url-credentials.bad.yaml":        {13, `nats.url: "nats://***@nats-1:4222" carries credentials`},
		"unknown-application.bad.yaml":         {11, `tenants[0].application: "ap" is not one of the applications`},
		"production-no-optin.bad.yaml":         {1, "environment: production needs the explicit opt-in allow_production"},
		"production-sandbox-endpoint.bad.yaml": {5, "upstream.api_base: http://127.0.0.1:8765 is the sandbox or a loopback address"},
		"production-demo-app.bad.yaml":         {8, `applications[0].client_id: "skolebuss-demo" is the sandbox's demo application`},
		"sandbox-production-endpoint.bad.yaml": {3, "upstream.token_url: https://connect.visma.com/connect/token is a production endpoint"},
		"both-secrets.bad.yaml":                {7, "applications[0].client_secret_env: set client_secret_env or client_secret_file, not both"},
		"bad-rate.bad.yaml":                    {11, "applications[0].rate_limit.burst: 0 must be at least 1"},
		"bad-threshold.bad.yaml":               {10, "publisher.delete_threshold: 1.5 is not a share in (0, 1]"},
		"bad-cache-events.bad.yaml":            {10, "fanout.cache_events: -5 is negative: give 0 to hold none"},
		"quota-zone.bad.yaml":                  {4, `upstream.quota_zone: "Europe/Olso" is not an IANA time zone`},
		"bad-retry.bad.yaml":                   {11, "retry.backoff[1]: -5s is not a wait from 1ns to 24h"},
		"embedded-replicas.bad.yaml":           {12, "nats.replicas: 3 replicas need a cluster"},
		"wrong-type.bad.yaml":                  {8, `applications[0].scopes: "vfsapi:..." is not a list`},
		"nats-inline-password.bad.yaml":        {12, "nats.password: an inline secret is refused; use password_env"},
		"syntax.bad.yaml":                      {3, "mapping values are not allowed"},
		"vendor-name.bad.yaml":                 {18, `vendors[1].name: vendor name "Itslearning.EU" contains a dot`},
		"vendor-twice.bad.yaml":                {18, `vendors[1].name: "lms-a" is named twice`},
		"vendor-unknown-tenant.bad.yaml":       {16, `vendors[0].tenants[1]: "7c9e6679-7425-40de-944b-e07fc1f90ae7" is not one of the tenants`},
		"vendor-profile.bad.yaml":              {17, `vendors[0].profile[2]: "nin" is not a part; the parts are roster, contact, demographics, guardians, national_id`},
		"vendor-delivery-kind.bad.yaml":        {18, `vendors[0].delivery.webhook: unknown field "webhook" in vendors[0].delivery`},
		"vendor-no-delivery.bad.yaml":          {15, "vendors[0].delivery: no kind: give one, like delivery: {nats: {}}"},
	}
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d bad files, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		w, ok := want[filepath.Base(f)]
		if !ok {
			t.Errorf("%s has no expectation", f)
			continue
		}
		_, err := Load(f)
		if err == nil {
			t.Errorf("%s: loaded", f)
			continue
		}
		prefix := fmt.Sprintf("%s:%d: ", f, w.line)
		found := false
		for _, l := range strings.Split(err.Error(), "\n") {
			if strings.HasPrefix(l, prefix) && strings.Contains(l, w.field) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s:\n  got  %q\n  want a line %q...%q", f, err, prefix, w.field)
		}
		for _, secret := range []string{"hunter2", "s3cret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows the secret: %v", f, err)
			}
		}
	}
}

func TestExampleLoads(t *testing.T) {
	c, err := Load("../../deploy/skolebuss.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tenants) != 3 || c.Tenants[1].Name != "Måneby kommune" || c.Tenants[2].Schedule.Interval != 6*time.Hour {
		t.Errorf("tenants %+v", c.Tenants)
	}
	a, ok := c.Application("skolebuss-demo")
	if !ok || a.RateLimit.Rate != 5 || a.Quotas.AlertAt[1] != 0.95 || a.ClientSecretEnv != "SKOLEBUSS_DEMO_SECRET" {
		t.Errorf("application %+v", a)
	}
	if len(c.Vendors) != 2 {
		t.Fatalf("vendors %+v", c.Vendors)
	}
	if c.Fanout.CacheEvents != DefaultCacheEvents {
		t.Errorf("fanout.cache_events %d, want %d", c.Fanout.CacheEvents, DefaultCacheEvents)
	}
	if v := c.Vendors[0]; v.Name != "lms-contact" || len(v.Tenants) != 3 || v.Delivery.Kind() != "nats" ||
		!slices.Equal(v.Parts(), []string{PartRoster, PartContact}) {
		t.Errorf("vendor 0 %+v, parts %v", v, v.Parts())
	}
	if v := c.Vendors[1]; v.Name != "lms-roster" || !slices.Equal(v.Tenants, []string{"0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"}) ||
		!slices.Equal(v.Parts(), []string{PartRoster}) {
		t.Errorf("vendor 1 %+v, parts %v", v, v.Parts())
	}
	if n := c.NATS; n.URL != "" || n.Embedded.Port != 4222 || n.Embedded.SyncAlways || n.DuplicateWindow != time.Hour {
		t.Errorf("nats %+v", n)
	}
	// Secrets come from the environment passed in, never from the file.
	env := map[string]string{"SKOLEBUSS_DEMO_SECRET": "from-env"}
	if err := c.ResolveSecrets(func(k string) string { return env[k] }, os.ReadFile); err != nil {
		t.Fatal(err)
	}
	if got := c.Applications[0].ClientSecret.Reveal(); got != "from-env" {
		t.Errorf("secret %q", got)
	}
	if s := fmt.Sprintf("%v %+v", c, c.Applications); strings.Contains(s, "from-env") {
		t.Errorf("secret printed: %s", s)
	}
}

func TestDefaultIsTheDemo(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "no secret") {
		t.Errorf("default without a secret: %v", err)
	}
	c.Applications[0].ClientSecret = auth.Secret(DemoSecret)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ResolveSecrets(func(string) string { return "" }, os.ReadFile); err != nil {
		t.Fatalf("a programmatic secret needs no variable: %v", err)
	}
	ids := []string{"aa750693-e3ea-441b-93fe-6a71a8371afa", "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f", "7c9e6679-7425-40de-944b-e07fc1f90ae7"}
	for i, id := range ids {
		if c.Tenants[i].ID != id || c.Tenants[i].Application != DemoApplication {
			t.Errorf("tenant %d: %+v", i, c.Tenants[i])
		}
	}
	if len(c.Vendors) != 2 {
		t.Fatalf("demo vendors %+v", c.Vendors)
	}
	contact, roster := c.Vendors[0], c.Vendors[1]
	if contact.Name != DemoVendorContact || len(contact.Tenants) != 3 || !slices.Equal(contact.Parts(), []string{PartRoster, PartContact}) {
		t.Errorf("demo vendor %+v", contact)
	}
	if roster.Name != DemoVendorRoster || !slices.Equal(roster.Tenants, []string{ids[0], ids[2]}) || !slices.Equal(roster.Parts(), []string{PartRoster}) {
		t.Errorf("demo vendor %+v", roster)
	}
	if c.Upstream.TokenURL != "http://127.0.0.1:8765/connect/token" || c.Upstream.TenantParam != "tenant_ID" || c.NATS.URL != "" {
		t.Errorf("default upstream %+v nats %+v", c.Upstream, c.NATS)
	}
	// The demo in production is refused, opt-in or not.
	c.Environment, c.AllowProduction = Production, true
	err := c.Validate()
	for _, want := range []string{"upstream.token_url", "upstream.api_base", "sandbox's demo application", "public demo secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("production demo: %v, want %q", err, want)
		}
	}
	if err := c.ResolveSecrets(func(string) string { return "" }, os.ReadFile); err == nil {
		t.Error("production accepted the demo secret")
	}
}

func TestApplyEnvironment(t *testing.T) {
	c := Default()
	c.Applications[0].ClientSecret = "x"
	env := map[string]string{
		"SKOLEBUSS_NATS_URL":         "nats://nats-1:4222",
		"SKOLEBUSS_NATS_REPLICAS":    "3",
		"SKOLEBUSS_OTLP_ENDPOINT":    "http://otel:4318",
		"SKOLEBUSS_DELETE_THRESHOLD": "0.1",
		"SKOLEBUSS_ALLOW_PRODUCTION": "true",
	}
	if err := c.Apply(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.NATS.URL != "nats://nats-1:4222" || c.NATS.Replicas != 3 || c.Telemetry.OTLPEndpoint != "http://otel:4318" ||
		c.Publisher.DeleteThreshold != 0.1 || !c.AllowProduction {
		t.Errorf("after Apply: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	env = map[string]string{"SKOLEBUSS_NATS_REPLICAS": "three", "SKOLEBUSS_SAMPLE_RATIO": "most"}
	err := c.Apply(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), `SKOLEBUSS_NATS_REPLICAS="three"`) || !strings.Contains(err.Error(), "SKOLEBUSS_SAMPLE_RATIO") {
		t.Errorf("bad values: %v", err)
	}
}

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Applications[0].ClientSecretFile = file
	c.NATS.URL, c.NATS.TokenEnv = "nats://h:4222", "NATS_TOKEN"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	err := c.ResolveSecrets(func(string) string { return "" }, os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "NATS_TOKEN is not set") {
		t.Errorf("missing token variable: %v", err)
	}
	if got := c.Applications[0].ClientSecret.Reveal(); got != "from-file" {
		t.Errorf("secret from file %q", got)
	}
	c2 := Default()
	c2.Applications[0].ClientSecretFile = filepath.Join(dir, "missing")
	err = c2.ResolveSecrets(func(string) string { return "" }, os.ReadFile)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "skolebuss-demo") {
		t.Errorf("missing file: %v", err)
	}
}

func TestVendorProfileAndName(t *testing.T) {
	// roster is always in, in front; national_id only when named.
	for _, tc := range []struct {
		profile, want []string
	}{
		{nil, []string{PartRoster}},
		{[]string{PartContact}, []string{PartRoster, PartContact}},
		{[]string{PartNationalID, PartGuardians, PartRoster}, []string{PartRoster, PartGuardians, PartNationalID}},
		{[]string{PartContact, PartDemographics, PartGuardians}, []string{PartRoster, PartContact, PartDemographics, PartGuardians}},
	} {
		if got := (Vendor{Profile: tc.profile}).Parts(); !slices.Equal(got, tc.want) {
			t.Errorf("profile %v: parts %v, want %v", tc.profile, got, tc.want)
		}
	}
	for name, ok := range map[string]bool{
		"itslearning": true, "lms_2-b": true, "0": true, strings.Repeat("a", messages.MaxVendorLen): true,
		"": false, strings.Repeat("a", messages.MaxVendorLen+1): false, "Lms": false, "lms.a": false, "lms*": false,
		"lms>": false, "lms a": false, "lms\x00": false, "læring": false,
	} {
		if err := messages.ValidateVendor(name); (err == nil) != ok {
			t.Errorf("ValidateVendor(%q) = %v, want ok %v", name, err, ok)
		}
	}
	// A vendor built in code is validated as one read from a file.
	c := Demo()
	c.Vendors = append(c.Vendors, Vendor{Name: "third", Tenants: []string{"no-such-tenant"}, Profile: []string{"everything"}})
	err := c.Validate()
	for _, want := range []string{`vendors[2].tenants[0]: "no-such-tenant" is not one of the tenants`,
		`vendors[2].profile[0]: "everything" is not a part`, "vendors[2].delivery: no kind"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad vendor: %v, want %q", err, want)
		}
	}
}

func TestProfilePartsAreTheProjections(t *testing.T) {
	// The parts a config may name are the parts the projection knows.
	if got := projection.PartNames(); !slices.Equal(got, ProfileParts) {
		t.Fatalf("config parts %v, projection parts %v", ProfileParts, got)
	}
	for _, v := range Demo().Vendors {
		if _, err := projection.ParseProfile(v.Parts()...); err != nil {
			t.Error(err)
		}
	}
}
