package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigRefusesBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string // substrings of the error, in order of the message
	}{
		{"unknown_field.bad.yaml", []string{"unknown_field.bad.yaml:5:", "applications[0].tenantz", `unknown field "tenantz"`}},
		{"wrong_type.bad.yaml", []string{"wrong_type.bad.yaml:7:", "applications[0].rate_limit.rate", `"fast" is not a number`}},
		{"bad_duration.bad.yaml", []string{"bad_duration.bad.yaml:1:", "token_lifetime", "not a duration"}},
		{"syntax.bad.yaml", []string{"syntax.bad.yaml:4:"}},
		{"bad_guid.bad.yaml", []string{"bad_guid.bad.yaml:3:", "tenants[0].id", "must be a GUID"}},
		{"duplicate_tenant.bad.yaml", []string{"duplicate_tenant.bad.yaml:5:", "tenants[1].id", "duplicate tenant id"}},
		{"unknown_preset.bad.yaml", []string{"unknown_preset.bad.yaml:4:", "tenants[0].size", `unknown preset "huge"`}},
		{"size_and_sizes.bad.yaml", []string{"size_and_sizes.bad.yaml:4:", "tenants[0].size", "not both"}},
		{"no_size.bad.yaml", []string{"no_size.bad.yaml:2:", "tenants[0].size", "missing"}},
		{"bad_sizes.bad.yaml", []string{"bad_sizes.bad.yaml:4:", "tenants[0].sizes", "schools"}},
		{"unknown_linked_tenant.bad.yaml", []string{"unknown_linked_tenant.bad.yaml:7:", "applications[0].tenants[1]", "unknown tenant"}},
		{"missing_secret.bad.yaml", []string{"missing_secret.bad.yaml:2:", "applications[0].client_secret", "missing"}},
		{"secret_twice.bad.yaml", []string{"secret_twice.bad.yaml:4:", "applications[0].client_secret_file", "not both"}},
		{"missing_secret_file.bad.yaml", []string{"missing_secret_file.bad.yaml:3:", "applications[0].client_secret_file", "cannot read"}},
		{"duplicate_client.bad.yaml", []string{"duplicate_client.bad.yaml:4:", "applications[1].client_id", "duplicate"}},
		{"negative_quota.bad.yaml", []string{"negative_quota.bad.yaml:5:", "applications[0].quota.daily", "negative"}},
		{"zero_rate.bad.yaml", []string{"zero_rate.bad.yaml:5:", "applications[0].rate_limit.rate", "positive"}},
		{"bad_error_rate.bad.yaml", []string{"bad_error_rate.bad.yaml:2:", "faults.error_rate", "between 0 and 1"}},
		{"bad_error_status.bad.yaml", []string{"bad_error_status.bad.yaml:7:", "tenants[0].faults.error_statuses[1]", "5xx", "404"}},
		{"bad_churn.bad.yaml", []string{"bad_churn.bad.yaml:5:", "tenants[0].churn", "between 0 and 1"}},
		{"bad_timezone.bad.yaml", []string{"bad_timezone.bad.yaml:1:", "quota_timezone", "Europe/Fjordvik"}},
		{"two_documents.bad.yaml", []string{"two_documents.bad.yaml:", "second YAML document"}},
		{"empty.bad.yaml", []string{"empty.bad.yaml:", "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("LoadConfig(%s) accepted a bad file", path)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order %q)", msg, w, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// Every bad file in testdata is in the table.
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(tests) {
		t.Errorf("testdata has %d bad files, the table %d", len(files), len(tests))
	}
}

func TestLoadConfigSecretFile(t *testing.T) {
	cfg, err := LoadConfig("testdata/good_secret_file.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Applications[0].ClientSecret; got != "file-secret" {
		t.Errorf("secret from file = %q, want file-secret (trimmed)", got)
	}
	if cfg.Issuer != DefaultIssuer || cfg.TokenLifetime.D() != DefaultTokenLifetime {
		t.Errorf("defaults not applied: issuer %q, token lifetime %s", cfg.Issuer, cfg.TokenLifetime)
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../../deploy/sandbox.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Applications) < 2 || len(cfg.Tenants) < 3 {
		t.Errorf("example has %d applications and %d tenants", len(cfg.Applications), len(cfg.Tenants))
	}
	if f := cfg.Tenants[3].Faults; f.ErrorRate != 0.2 || f.RetryAfter.D() != 2*time.Second || f.Latency.D() != 150*time.Millisecond {
		t.Errorf("tenant faults read as %+v", f)
	}
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New(example): %v", err)
	}
	s.Close()
}

func TestDemoConfigIsValid(t *testing.T) {
	cfg := DemoConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{DemoTenantFjordvik: "tiny", DemoTenantMaaneby: "small", DemoTenantNordstrand: "medium"}
	for _, tn := range cfg.Tenants {
		if want[tn.ID] != tn.Size {
			t.Errorf("tenant %s %s: size %q, want %q", tn.ID, tn.Name, tn.Size, want[tn.ID])
		}
	}
	// The documented demo: skolebuss-demo with its secret and the export
	// scope, linked to the three tenants, and a second application without
	// the scope.
	if len(cfg.Tenants) != 3 || len(cfg.Applications) != 2 {
		t.Fatalf("demo has %d tenants and %d applications, want 3 and 2", len(cfg.Tenants), len(cfg.Applications))
	}
	demo, noScope := cfg.Applications[0], cfg.Applications[1]
	if demo.ClientID != "skolebuss-demo" || demo.ClientSecret != "skolebuss-demo-secret" ||
		!slices.Equal(demo.Scopes, []string{"vfsapi:lmsexport"}) || len(demo.Tenants) != 3 {
		t.Errorf("demo application %+v", demo)
	}
	for _, id := range demo.Tenants {
		if _, ok := want[id]; !ok {
			t.Errorf("demo application linked to %s, not a demo tenant", id)
		}
	}
	if slices.Contains(noScope.Scopes, ScopeLMSExport) || noScope.ClientID == "" || noScope.ClientSecret == "" {
		t.Errorf("second application %+v should lack %s", noScope, ScopeLMSExport)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := oneTenant()
	cfg.Applications[0].Quota.Monthly = -5
	cfg.Tenants[0].Churn = -1
	err := cfg.WithDefaults().Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, w := range []string{"applications[0].quota.monthly", "tenants[0].churn"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %s", err, w)
		}
	}
}

func TestLoadConfigServerSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.yaml")
	data := `issuer: https://connect.example.test
api_version: 2.0.1
deprecation: 2026-09-01T00:00:00Z
sunset: 2027-03-01T00:00:00Z
token_lifetime: 15m
generation_interval: 1h30m
quota_timezone: Europe/Oslo
faults:
  latency: 20ms
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://connect.example.test" || cfg.APIVersion != "2.0.1" || cfg.TokenLifetime.D() != 15*time.Minute ||
		cfg.GenerationInterval.D() != 90*time.Minute || cfg.QuotaTimezone != "Europe/Oslo" || cfg.Faults.Latency.D() != 20*time.Millisecond {
		t.Errorf("read %+v", cfg)
	}
	if cfg.Deprecation == nil || cfg.Deprecation.Unix() != 1788220800 || cfg.Sunset == nil || cfg.Sunset.Year() != 2027 {
		t.Errorf("deprecation %v sunset %v", cfg.Deprecation, cfg.Sunset)
	}
}
