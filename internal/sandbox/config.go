package sandbox

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"time"
	// quota_timezone names an IANA zone: the sandbox carries the zone data, so
	// it loads in a container without any.
	_ "time/tzdata"

	"github.com/skolebuss/skolebuss/internal/rostergen"
	"go.yaml.in/yaml/v3"
)

// The demo credentials and tenants served when no config file is given.
// They are public on purpose: the sandbox is a fake upstream.
const (
	DemoClientID            = "skolebuss-demo"
	DemoClientSecret        = "skolebuss-demo-secret"
	DemoNoScopeClientID     = "skolebuss-noscope"
	DemoNoScopeClientSecret = "skolebuss-noscope-secret"

	// ScopeLMSExport is the scope the export endpoint requires.
	ScopeLMSExport = "vfsapi:lmsexport"

	DemoTenantFjordvik   = "aa750693-e3ea-441b-93fe-6a71a8371afa" // Fjordvik kommune, tiny
	DemoTenantMaaneby    = "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f" // Måneby kommune, small
	DemoTenantNordstrand = "7c9e6679-7425-40de-944b-e07fc1f90ae7" // Nordstrand kommune, medium
)

// Defaults of the server-level settings.
const (
	DefaultAddr          = "127.0.0.1:8765"
	DefaultIssuer        = "https://connect.sandbox.skolebuss.local"
	DefaultAudience      = "https://skole.sandbox.skolebuss.local/api"
	DefaultAPIVersion    = "1.4.0"
	DefaultTokenLifetime = time.Hour
	DefaultFaultSeed     = 1
)

// Config is the whole sandbox: server settings, applications and tenants.
// The zero values of the server settings mean their defaults (see
// WithDefaults); Validate checks a config after defaults are applied.
type Config struct {
	// Issuer is the token's iss claim and the issuer the export endpoint
	// expects.
	Issuer string `yaml:"issuer"`
	// Audience is the token's aud claim.
	Audience string `yaml:"audience"`
	// APIVersion is sent in X-Api-Version on every answer.
	APIVersion string `yaml:"api_version"`
	// Deprecation and Sunset, when set, are sent on every API answer
	// (Deprecation as an RFC 9745 "@unix-seconds" date, Sunset as an HTTP
	// date, RFC 8594).
	Deprecation *time.Time `yaml:"deprecation"`
	Sunset      *time.Time `yaml:"sunset"`
	// TokenLifetime is expires_in and the lifetime of issued tokens.
	TokenLifetime Duration `yaml:"token_lifetime"`
	// GenerationInterval advances every tenant's generation this often;
	// 0 means only by Advance or the admin call.
	GenerationInterval Duration `yaml:"generation_interval"`
	// SigningKeyFile is a PEM file with a PKCS#8, EC or PKCS#1 RSA private
	// key. Empty: a P-256 key is generated at start.
	SigningKeyFile string `yaml:"signing_key_file"`
	// FaultSeed seeds the random source that picks which answers fail, so a
	// run is reproducible.
	FaultSeed uint64 `yaml:"fault_seed"`
	// QuotaTimezone is the IANA zone in which daily and monthly quotas reset
	// (default UTC).
	QuotaTimezone string `yaml:"quota_timezone"`
	// Faults apply to every tenant (a tenant's own faults win field by field).
	Faults Faults `yaml:"faults"`

	Applications []Application `yaml:"applications"`
	Tenants      []Tenant      `yaml:"tenants"`

	// Now is the clock of tokens, limits and quotas; nil means time.Now.
	// Tests set it. Not part of the file.
	Now func() time.Time `yaml:"-"`
}

// Application is an OAuth client of the token endpoint.
type Application struct {
	ClientID string `yaml:"client_id"`
	// ClientSecret inline, or ClientSecretFile (read by LoadConfig; one of
	// the two).
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes the application may ask for.
	Scopes []string `yaml:"scopes"`
	// Tenants linked to the application, by tenant id.
	Tenants []string `yaml:"tenants"`
	// RateLimit of export requests; nil means unlimited.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Quota of export requests; a zero field means unlimited.
	Quota Quota `yaml:"quota"`
}

// RateLimit is a token bucket: Rate requests per second, bursts of Burst.
type RateLimit struct {
	Rate  float64 `yaml:"rate" json:"rate"`
	Burst int     `yaml:"burst" json:"burst"`
}

// Quota counts export requests per calendar day and month.
type Quota struct {
	Daily   int `yaml:"daily" json:"daily"`
	Monthly int `yaml:"monthly" json:"monthly"`
}

// Tenant is one generated municipality.
type Tenant struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Size is a rostergen preset ("tiny", "small", "medium", "large");
	// Sizes gives the sizes explicitly. Exactly one of the two.
	Size  string           `yaml:"size"`
	Sizes *rostergen.Sizes `yaml:"sizes"`
	// Seed of the generator; nil derives one from the id.
	Seed *uint64 `yaml:"seed"`
	// Churn is the share of records that change per generation (0..1).
	Churn  float64 `yaml:"churn"`
	Faults Faults  `yaml:"faults"`
}

// Duration is a time.Duration written as "1.5s" or "200ms" in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration ("90s", "1h").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (like 1.5s or 200ms): %q", b)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a YAML scalar as a duration (internal/yamlstrict
// reports an error with the node's file, line and field).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("not a duration (like 1.5s or 200ms)")
	}
	return d.UnmarshalText([]byte(n.Value))
}

// MarshalText writes d as a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FieldError is a config error in one field. Path is the field's place in the
// file ("applications[1].rate_limit.burst").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// WithDefaults returns c with every unset server setting at its default.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	}
	if c.TokenLifetime == 0 {
		c.TokenLifetime = Duration(DefaultTokenLifetime)
	}
	if c.FaultSeed == 0 {
		c.FaultSeed = DefaultFaultSeed
	}
	if c.QuotaTimezone == "" {
		c.QuotaTimezone = "UTC"
	}
	return c
}

// Validate checks c (after WithDefaults) and returns every problem found,
// each a *FieldError naming the field.
func (c Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Issuer == "" {
		add(fieldErr("issuer", "must not be empty"))
	}
	if c.TokenLifetime <= 0 {
		add(fieldErr("token_lifetime", "must be positive, not %s", c.TokenLifetime))
	}
	if c.GenerationInterval < 0 {
		add(fieldErr("generation_interval", "must not be negative (0 means manual)"))
	}
	if _, err := time.LoadLocation(c.QuotaTimezone); err != nil {
		add(fieldErr("quota_timezone", "unknown time zone %q", c.QuotaTimezone))
	}
	add(c.Faults.validate("faults"))

	tenants := make(map[string]bool)
	for i, t := range c.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		before := len(errs)
		switch {
		case !guidRE.MatchString(t.ID):
			add(fieldErr(p+".id", "must be a GUID like aa750693-e3ea-441b-93fe-6a71a8371afa, not %q", t.ID))
		case tenants[strings.ToLower(t.ID)]:
			add(fieldErr(p+".id", "duplicate tenant id %s", t.ID))
		}
		tenants[strings.ToLower(t.ID)] = true
		if strings.TrimSpace(t.Name) == "" {
			add(fieldErr(p+".name", "must not be empty"))
		}
		switch {
		case t.Size != "" && t.Sizes != nil:
			add(fieldErr(p+".size", "give either size or sizes, not both"))
		case t.Size == "" && t.Sizes == nil:
			add(fieldErr(p+".size", "missing: give a preset (tiny, small, medium, large) or sizes"))
		case t.Size != "":
			if _, err := rostergen.Preset(t.Size); err != nil {
				add(fieldErr(p+".size", "unknown preset %q (want tiny, small, medium or large)", t.Size))
			}
		default:
			if err := t.Sizes.Validate(); err != nil {
				add(fieldErr(p+".sizes", "%v", err))
			}
		}
		if t.Churn < 0 || t.Churn > 1 {
			add(fieldErr(p+".churn", "must be between 0 and 1 (0 means the default %v), not %v", rostergen.DefaultChurn, t.Churn))
		}
		if sz, err := t.sizes(); err == nil && len(errs) == before {
			spec := rostergen.Spec{TenantID: t.ID, Name: t.Name, Seed: t.seed(), Sizes: sz, Churn: t.Churn}
			if err := spec.Validate(); err != nil {
				add(fieldErr(p, "%v", err))
			}
		}
		add(t.Faults.validate(p + ".faults"))
	}
	for i, t := range c.Tenants {
		if tt := t.Faults.TokenTenant; tt != "" && !tenants[strings.ToLower(tt)] {
			add(fieldErr(fmt.Sprintf("tenants[%d].faults.token_tenant", i), "%s is not one of the tenants", tt))
		}
	}
	if tt := c.Faults.TokenTenant; tt != "" && !tenants[strings.ToLower(tt)] {
		add(fieldErr("faults.token_tenant", "%s is not one of the tenants", tt))
	}

	clients := make(map[string]bool)
	for i, a := range c.Applications {
		p := fmt.Sprintf("applications[%d]", i)
		switch {
		case a.ClientID == "":
			add(fieldErr(p+".client_id", "must not be empty"))
		case clients[a.ClientID]:
			add(fieldErr(p+".client_id", "duplicate client_id %q", a.ClientID))
		}
		clients[a.ClientID] = true
		if a.ClientSecret == "" {
			add(fieldErr(p+".client_secret", "missing: give client_secret or client_secret_file"))
		}
		for j, s := range a.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\"\\") {
				add(fieldErr(fmt.Sprintf("%s.scopes[%d]", p, j), "not a valid scope: %q", s))
			}
		}
		for j, t := range a.Tenants {
			if !tenants[strings.ToLower(t)] {
				add(fieldErr(fmt.Sprintf("%s.tenants[%d]", p, j), "unknown tenant %q (not in tenants)", t))
			}
		}
		if rl := a.RateLimit; rl != nil {
			if rl.Rate <= 0 {
				add(fieldErr(p+".rate_limit.rate", "must be positive (requests per second), not %v", rl.Rate))
			}
			if rl.Burst < 1 {
				add(fieldErr(p+".rate_limit.burst", "must be at least 1, not %d", rl.Burst))
			}
		}
		if a.Quota.Daily < 0 {
			add(fieldErr(p+".quota.daily", "must not be negative (0 means unlimited)"))
		}
		if a.Quota.Monthly < 0 {
			add(fieldErr(p+".quota.monthly", "must not be negative (0 means unlimited)"))
		}
	}
	return errors.Join(errs...)
}

// seed returns the tenant's generator seed: the configured one, or one
// derived from the id.
func (t Tenant) seed() uint64 {
	if t.Seed != nil {
		return *t.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(t.ID)))
	return h.Sum64()
}

// sizes resolves the tenant's preset or explicit sizes.
func (t Tenant) sizes() (rostergen.Sizes, error) {
	if t.Sizes != nil {
		return *t.Sizes, nil
	}
	return rostergen.Preset(t.Size)
}

// DemoConfig is the documented demo served without a config file: the
// application skolebuss-demo (scope vfsapi:lmsexport) linked to Fjordvik
// (tiny), Måneby (small) and Nordstrand (medium), and skolebuss-noscope
// (scope vfsapi:employees only) linked to Fjordvik.
func DemoConfig() Config {
	seed := func(v uint64) *uint64 { return &v }
	return Config{
		Applications: []Application{
			{
				ClientID:     DemoClientID,
				ClientSecret: DemoClientSecret,
				Scopes:       []string{ScopeLMSExport},
				Tenants:      []string{DemoTenantFjordvik, DemoTenantMaaneby, DemoTenantNordstrand},
				RateLimit:    &RateLimit{Rate: 5, Burst: 10},
				Quota:        Quota{Daily: 5000, Monthly: 100000},
			},
			{
				ClientID:     DemoNoScopeClientID,
				ClientSecret: DemoNoScopeClientSecret,
				Scopes:       []string{"vfsapi:employees"},
				Tenants:      []string{DemoTenantFjordvik},
			},
		},
		Tenants: []Tenant{
			{ID: DemoTenantFjordvik, Name: "Fjordvik kommune", Size: "tiny", Seed: seed(1001), Churn: 0.02},
			{ID: DemoTenantMaaneby, Name: "Måneby kommune", Size: "small", Seed: seed(1002), Churn: 0.02},
			{ID: DemoTenantNordstrand, Name: "Nordstrand kommune", Size: "medium", Seed: seed(1003), Churn: 0.02},
		},
	}.WithDefaults()
}
