// Package config reads skolebuss's one YAML file: the environment, the
// upstream endpoints, the applications and their limits, the tenants and
// their schedules, the LMS vendors and what each receives, NATS, the
// publisher and telemetry.
//
// Loading is strict: an unknown key, a value of the wrong type or a value
// out of range is refused with the file, the line and the field. Secrets are
// never inline: a client secret (and a NATS password or token) is named by an
// environment variable or a file, and ResolveSecrets reads it through the
// functions main passes in; nothing in this package reads the environment or
// the file system on its own besides the config file Load is given.
//
// The order of a start is: Load (or Default), Apply (SKOLEBUSS_* variables),
// the command's flags, Validate, ResolveSecrets.
package config

import (
	"slices"
	"time"
	// upstream.quota_zone names an IANA zone: the binary carries the zone
	// data, so it loads in a container without any.
	_ "time/tzdata"

	"github.com/skolebuss/skolebuss/internal/auth"
)

// Environment is sandbox or production.
type Environment string

const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
)

// The sandbox's public demo: its endpoints, application and secret. A
// production config refuses every one of them.
const (
	SandboxAddr     = "127.0.0.1:8765"
	SandboxTokenURL = "http://" + SandboxAddr + "/connect/token"
	SandboxAPIBase  = "http://" + SandboxAddr
	DemoApplication = "skolebuss-demo"
	DemoClientID    = "skolebuss-demo"
	DemoSecret      = "skolebuss-demo-secret"
	DemoScope       = "vfsapi:lmsexport"
)

// LMSMaxAge is how long the LMS stream keeps events; the duplicate window
// of nats.duplicate_window must fit in it.
const LMSMaxAge = 30 * 24 * time.Hour

// Config is the whole file. Durations are written as Go durations ("90s",
// "1h"). Load fills defaults for what the file leaves out.
type Config struct {
	Environment Environment `yaml:"environment"`
	// AllowProduction is the opt-in without which production endpoints are
	// refused (flag --allow-production, SKOLEBUSS_ALLOW_PRODUCTION=true).
	AllowProduction bool          `yaml:"allow_production"`
	Upstream        Upstream      `yaml:"upstream"`
	Applications    []Application `yaml:"applications"`
	Tenants         []Tenant      `yaml:"tenants"`
	Vendors         []Vendor      `yaml:"vendors"`
	NATS            NATS          `yaml:"nats"`
	Publisher       Publisher     `yaml:"publisher"`
	Fanout          Fanout        `yaml:"fanout"`
	Retry           Retry         `yaml:"retry"`
	Telemetry       Telemetry     `yaml:"telemetry"`

	file  string         // the file it was loaded from, for messages
	lines map[string]int // field path -> line, from the file
}

// Upstream is the Visma Connect token endpoint and the Flyt Skole API.
type Upstream struct {
	TokenURL string `yaml:"token_url"`
	APIBase  string `yaml:"api_base"`
	// TenantParam names the token request's tenant parameter. Default tenant_ID.
	TenantParam string `yaml:"tenant_param"`
	// TokenTimeout bounds one token request. Default 30s.
	TokenTimeout time.Duration `yaml:"token_timeout"`
	// ConnectTimeout bounds a TCP and TLS connect. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for the export's headers. Default 2m.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleTimeout aborts an export body that makes no progress. Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ExportDeadline bounds one whole export (token, answer, body into the
	// store), however steadily the body arrives. Default
	// DefaultExportDeadline (30m); a tenant may set its own.
	ExportDeadline time.Duration `yaml:"export_deadline"`
	// MaxExportSize is the largest export stored; a larger one is cut off
	// at this size and deleted. Default DefaultMaxExportSize (1GiB); a
	// tenant may set its own.
	MaxExportSize ByteSize `yaml:"max_export_size"`
	// QuotaZone is the IANA zone the upstream counts its days and months
	// in: the daily and monthly quotas reset at its midnights. Default UTC.
	QuotaZone string `yaml:"quota_zone"`
}

// QuotaLocation is QuotaZone loaded (UTC for an empty or unknown zone; Parse
// refuses an unknown one).
func (u Upstream) QuotaLocation() *time.Location {
	if loc, err := time.LoadLocation(u.QuotaZone); err == nil {
		return loc
	}
	return time.UTC
}

// Application is one OAuth client registered upstream, with its limits.
type Application struct {
	Name     string `yaml:"name"`
	ClientID string `yaml:"client_id"`
	// Exactly one of ClientSecretEnv (an environment variable's name) and
	// ClientSecretFile (a file holding the secret) names the secret.
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret is filled by ResolveSecrets, or set by a program (the
	// demo sets the sandbox's public demo secret). It is never read from YAML.
	ClientSecret auth.Secret `yaml:"-"`
	Scopes       []string    `yaml:"scopes"`
	RateLimit    RateLimit   `yaml:"rate_limit"`
	Quotas       Quotas      `yaml:"quotas"`
}

// RateLimit is the sustained request rate per second and the burst, shared
// by every fetcher replica. Rate 0: no limit.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Quotas are the requests allowed per day and month in upstream.quota_zone
// (0: none), and the
// shares at which an alert is raised. Default alert_at [0.8, 0.95].
type Quotas struct {
	Daily   int64     `yaml:"daily"`
	Monthly int64     `yaml:"monthly"`
	AlertAt []float64 `yaml:"alert_at"`
}

// Tenant is one municipality linked to an application.
type Tenant struct {
	ID          string   `yaml:"id"`
	Name        string   `yaml:"name"`
	Application string   `yaml:"application"`
	Schedule    Schedule `yaml:"schedule"`
	// ExportDeadline and MaxExportSize, when set, replace upstream's for
	// this tenant (a municipality much larger than the rest).
	ExportDeadline time.Duration `yaml:"export_deadline"`
	MaxExportSize  ByteSize      `yaml:"max_export_size"`
}

// Schedule is an export every Interval, shifted by a random part of Jitter
// so tenants do not all start at once. Default interval 1h, jitter 0.
type Schedule struct {
	Interval time.Duration `yaml:"interval"`
	Jitter   time.Duration `yaml:"jitter"`
}

// Vendor is one LMS vendor: the tenants linked to it, the parts of the
// records it may receive, and how it receives them.
type Vendor struct {
	// Name is the vendor's subject token (vendor.<name>.>, stream
	// VENDOR_<name>): lower-case letters, digits, '-' and '_', at most
	// messages.MaxVendorLen bytes.
	Name string `yaml:"name"`
	// Tenants are the ids of the configured tenants whose records the vendor
	// receives.
	Tenants []string `yaml:"tenants"`
	// Profile names the parts of the records the vendor receives (see
	// ProfileParts). roster is always included and is the whole default;
	// national_id is given only when listed by name.
	Profile []string `yaml:"profile"`
	// Delivery is how the vendor receives its events: exactly one kind.
	Delivery Delivery `yaml:"delivery"`
}

// Parts is the vendor's profile as it applies: roster first, then every
// other part the profile lists, in the order of ProfileParts.
func (v Vendor) Parts() []string {
	out := []string{PartRoster}
	for _, p := range ProfileParts[1:] {
		if slices.Contains(v.Profile, p) {
			out = append(out, p)
		}
	}
	return out
}

// The parts a vendor's profile can name.
const (
	PartRoster       = "roster"       // ids, names, roles, groups, memberships, status, language
	PartContact      = "contact"      // e-mail, phone, address, web addresses
	PartDemographics = "demographics" // gender, birthday, photo
	PartGuardians    = "guardians"    // relations between persons: guardians and next of kin, their records and groups
	PartNationalID   = "national_id"  // the national identity number (personNIN, personNINencrypted)
)

// ProfileParts lists the parts a profile can name, roster first.
var ProfileParts = []string{PartRoster, PartContact, PartDemographics, PartGuardians, PartNationalID}

// Delivery is how a vendor receives its events. Exactly one kind is set;
// NATS (the vendor's own stream on the bus) is the only kind so far, and
// another kind is one more pointer field here.
type Delivery struct {
	NATS *NATSDelivery `yaml:"nats"`
}

// NATSDelivery delivers to the stream VENDOR_<name> on subjects
// vendor.<name>.>, which only the vendor's NATS user may read. It has no
// settings yet.
type NATSDelivery struct{}

// Kind names the delivery's kind ("nats"), or "" when none is set.
func (d Delivery) Kind() string {
	if d.NATS != nil {
		return "nats"
	}
	return ""
}

// NATS is an external server (URL) or the embedded one.
type NATS struct {
	// URL of an external server or cluster; empty runs the embedded server.
	URL      string   `yaml:"url"`
	Embedded Embedded `yaml:"embedded"`
	// CredentialsFile, User with PasswordEnv, or TokenEnv: at most one.
	CredentialsFile string `yaml:"credentials_file"`
	User            string `yaml:"user"`
	PasswordEnv     string `yaml:"password_env"`
	TokenEnv        string `yaml:"token_env"`
	// Replicas of streams and stores: 1 embedded, 3 in a cluster. Default 1.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow of the event stream: a message id published again
	// within it is dropped. A publisher's redo of an export does not rely
	// on it (it checks the stream for what the export stored). Default 1h.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`

	Password auth.Secret `yaml:"-"` // from PasswordEnv, by ResolveSecrets
	Token    auth.Secret `yaml:"-"` // from TokenEnv, by ResolveSecrets
}

// Embedded is the in-process nats-server.
type Embedded struct {
	// DataDir holds JetStream's files. Default "data/nats".
	DataDir string `yaml:"data_dir"`
	// Host and Port to listen on. Default 127.0.0.1:4222; -1 picks a free port.
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// SyncAlways flushes every write to disk before acknowledging it. Default
	// false (JetStream's own default: flush every 2 minutes). See bus.EmbeddedConfig.
	SyncAlways bool `yaml:"sync_always"`
}

// Publisher configures the diff-and-publish stage.
type Publisher struct {
	// DeleteThreshold is the largest share of a tenant's records one export
	// may delete before it is held for an operator. Default 0.2.
	DeleteThreshold float64 `yaml:"delete_threshold"`
	// SpoolDir holds the publisher's temporary files. Default "data/spool".
	SpoolDir string `yaml:"spool_dir"`
}

// Fanout configures the fan-out stage.
type Fanout struct {
	// CacheEvents is the most change events the fan-out holds decoded in
	// memory, of the exports it is delivering, shared by the vendors of
	// their tenant (about 750 bytes each); an export that does not fit is
	// read from the stream by each vendor. 0 holds none. Default
	// DefaultCacheEvents.
	CacheEvents int `yaml:"cache_events"`
}

// DefaultCacheEvents is fanout.cache_events' default: 250,000 change events,
// about 190 MB, enough for a medium municipality's first export (about
// 40,000) many times over; a large municipality's first export (about
// 800,000) is read from the stream by each vendor unless it is raised.
const DefaultCacheEvents = 250_000

// Retry is what the fetch and publish stages do with a message that failed
// for a passing reason (an upstream 5xx, a reset, a timeout): try again after
// Backoff, and after MaxAttempts such failures dead-letter it. Throttling
// (429, 503 with Retry-After, an open breaker) waits as the upstream says and
// is not counted.
type Retry struct {
	// MaxAttempts before the dead-letter stream. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// Backoff is the wait before the n-th retry; the last one repeats.
	// Default [1s, 5s, 30s, 2m].
	Backoff []time.Duration `yaml:"backoff"`
}

// Telemetry configures traces and metrics.
type Telemetry struct {
	// OTLPEndpoint is an OTLP/HTTP collector (http://host:4318); empty keeps
	// telemetry in the process.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// ServiceName. Default "skolebuss".
	ServiceName string `yaml:"service_name"`
	// SampleRatio of new traces, 0..1. Default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
	// MetricsAddr is where a daemon serves /metrics for Prometheus
	// (host:port); empty serves none. Flag --metrics-addr.
	MetricsAddr string `yaml:"metrics_addr"`
}

// base is the starting point a file is decoded onto: every scalar default,
// no applications and no tenants.
func base() Config {
	return Config{
		Environment: Sandbox,
		Upstream: Upstream{TenantParam: auth.DefaultTenantParam, TokenTimeout: 30 * time.Second,
			ConnectTimeout: 10 * time.Second, ResponseHeaderTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
			ExportDeadline: DefaultExportDeadline, MaxExportSize: DefaultMaxExportSize, QuotaZone: "UTC"},
		NATS: NATS{Embedded: Embedded{DataDir: "data/nats", Host: "127.0.0.1", Port: 4222},
			Replicas: 1, DuplicateWindow: time.Hour},
		Publisher: Publisher{DeleteThreshold: 0.2, SpoolDir: "data/spool"},
		Fanout:    Fanout{CacheEvents: DefaultCacheEvents},
		Retry:     Retry{MaxAttempts: 5, Backoff: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}},
		Telemetry: Telemetry{ServiceName: "skolebuss", SampleRatio: 1},
	}
}

// DemoTenants are the sandbox's three demo municipalities.
var DemoTenants = []Tenant{
	{ID: "aa750693-e3ea-441b-93fe-6a71a8371afa", Name: "Fjordvik kommune"},
	{ID: "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f", Name: "Måneby kommune"},
	{ID: "7c9e6679-7425-40de-944b-e07fc1f90ae7", Name: "Nordstrand kommune"},
}

// The demo's two vendors: one with roster and contact on every demo tenant,
// one with the roster only on the first and the third.
const (
	DemoVendorContact = "itslearning-demo"
	DemoVendorRoster  = "roster-only-demo"
)

// Default is the demo's configuration: the sandbox on 127.0.0.1:8765, the
// application skolebuss-demo, the three demo tenants exported every 10
// minutes, the two demo vendors, and the embedded NATS server. The application's secret is not
// set: the demo sets it (ClientSecret = DemoSecret, the sandbox's public demo
// secret) or names it with ClientSecretEnv before Validate.
func Default() *Config {
	c := base()
	c.Upstream.TokenURL = SandboxTokenURL
	c.Upstream.APIBase = SandboxAPIBase
	c.Applications = []Application{{
		Name: DemoApplication, ClientID: DemoClientID, Scopes: []string{DemoScope},
		RateLimit: RateLimit{Rate: 5, Burst: 5},
		Quotas:    Quotas{Daily: 10000, Monthly: 200000, AlertAt: []float64{0.8, 0.95}},
	}}
	for _, t := range DemoTenants {
		t.Application = DemoApplication
		t.Schedule = Schedule{Interval: 10 * time.Minute, Jitter: 30 * time.Second}
		c.Tenants = append(c.Tenants, t)
	}
	c.Vendors = []Vendor{
		{Name: DemoVendorContact, Tenants: []string{DemoTenants[0].ID, DemoTenants[1].ID, DemoTenants[2].ID},
			Profile: []string{PartRoster, PartContact}, Delivery: Delivery{NATS: &NATSDelivery{}}},
		{Name: DemoVendorRoster, Tenants: []string{DemoTenants[0].ID, DemoTenants[2].ID},
			Profile: []string{PartRoster}, Delivery: Delivery{NATS: &NATSDelivery{}}},
	}
	return &c
}

// Demo is Default with the demo application's secret set: the sandbox's
// public one. It is what every command runs without --config.
func Demo() *Config {
	c := Default()
	if a, ok := c.Application(DemoApplication); ok {
		a.ClientSecret = DemoSecret
	}
	return c
}

// File is the file the config was loaded from ("" for Default).
func (c *Config) File() string { return c.file }

// Application returns the application named name.
func (c *Config) Application(name string) (*Application, bool) {
	for i := range c.Applications {
		if c.Applications[i].Name == name {
			return &c.Applications[i], true
		}
	}
	return nil, false
}

// Vendor returns the vendor named name.
func (c *Config) Vendor(name string) (*Vendor, bool) {
	for i := range c.Vendors {
		if c.Vendors[i].Name == name {
			return &c.Vendors[i], true
		}
	}
	return nil, false
}

// Tenant returns the tenant with id.
func (c *Config) Tenant(id string) (*Tenant, bool) {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i], true
		}
	}
	return nil, false
}
