package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// FieldError is one thing wrong with one field of the config.
type FieldError struct {
	File  string // "" for a config built in code
	Line  int    // 0 when the file does not hold the field
	Field string // path: tenants[1].schedule.interval
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Field + ": " + e.Msg)
	return b.String()
}

// Errors is every FieldError of one Validate, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

type validator struct {
	c    *Config
	errs Errors
}

// line finds the line of path in the file, or of its nearest parent there.
func (v *validator) line(path string) int {
	for p := path; p != ""; {
		if l, ok := v.c.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{File: v.c.file, Line: v.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks every field and the rules between them; it returns Errors
// listing all problems (nil if none). Production rules: environment
// production, or a production endpoint, needs AllowProduction; a production
// config refuses the sandbox's endpoints, loopback and plain-http endpoints,
// and the demo application's client id and secret.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.environment()
	v.upstream()
	v.applications()
	v.tenants()
	v.bounds()
	v.vendors()
	v.nats()
	if t := c.Publisher.DeleteThreshold; t <= 0 || t > 1 || math.IsNaN(t) {
		v.add("publisher.delete_threshold", "%v is not a share in (0, 1]", t)
	}
	if c.Publisher.SpoolDir == "" {
		v.add("publisher.spool_dir", "is empty")
	}
	if n := c.Fanout.CacheEvents; n < 0 {
		v.add("fanout.cache_events", "%d is negative: give 0 to hold none", n)
	}
	if n := c.Retry.MaxAttempts; n < 1 || n > 100 {
		v.add("retry.max_attempts", "%d is not from 1 to 100", n)
	}
	if len(c.Retry.Backoff) == 0 {
		v.add("retry.backoff", "is empty: give at least one wait, like [1s, 30s]")
	}
	for i, d := range c.Retry.Backoff {
		if d <= 0 || d > 24*time.Hour {
			v.add(fmt.Sprintf("retry.backoff[%d]", i), "%s is not a wait from 1ns to 24h", d)
		}
	}
	if r := c.Telemetry.SampleRatio; r < 0 || r > 1 || r != r {
		v.add("telemetry.sample_ratio", "%v is not in [0, 1]", r)
	}
	if e := c.Telemetry.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("telemetry.otlp_endpoint", "%q is not an http(s) URL", e)
		}
	}
	if a := c.Telemetry.MetricsAddr; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			v.add("telemetry.metrics_addr", "%q is not host:port", a)
		}
	}
	if c.Telemetry.ServiceName == "" {
		v.add("telemetry.service_name", "is empty")
	}
	if len(v.errs) == 0 {
		return nil
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	return v.errs
}

func (v *validator) environment() {
	c := v.c
	switch c.Environment {
	case Sandbox:
		for _, f := range []struct{ path, url string }{{"upstream.token_url", c.Upstream.TokenURL}, {"upstream.api_base", c.Upstream.APIBase}} {
			if isProductionEndpoint(f.url) && !c.AllowProduction {
				v.add(f.path, "%s is a production endpoint; a sandbox config may not use it (set environment: production and allow_production: true)", f.url)
			}
		}
	case Production:
		if !c.AllowProduction {
			v.add("environment", "production needs the explicit opt-in allow_production: true (or --allow-production)")
		}
		for _, f := range []struct{ path, url string }{{"upstream.token_url", c.Upstream.TokenURL}, {"upstream.api_base", c.Upstream.APIBase}} {
			if u, err := url.Parse(f.url); err == nil && u.Host != "" {
				switch {
				case strings.Contains(f.url, SandboxAddr) || isLoopback(u.Hostname()):
					v.add(f.path, "%s is the sandbox or a loopback address; production refuses it", f.url)
				case u.Scheme != "https":
					v.add(f.path, "production endpoints must use https, not %s", u.Scheme)
				}
			}
		}
		for i, a := range c.Applications {
			if a.ClientID == DemoClientID || a.Name == DemoApplication {
				v.add(fmt.Sprintf("applications[%d].client_id", i), "%q is the sandbox's demo application; production refuses it", a.ClientID)
			}
			if a.ClientSecret.Reveal() == DemoSecret {
				v.add(fmt.Sprintf("applications[%d].client_secret_env", i), "the secret is the sandbox's public demo secret; production refuses it")
			}
		}
	default:
		v.add("environment", "%q is not sandbox or production", c.Environment)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isProductionEndpoint reports whether u points at Visma's production
// services (a visma.com host other than a staging one).
func isProductionEndpoint(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return (h == "visma.com" || strings.HasSuffix(h, ".visma.com")) && !strings.Contains(h, "stag")
}

func (v *validator) url(path, s string) {
	if s == "" {
		v.add(path, "is required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "%q is not an http(s) URL", s)
	}
}

func (v *validator) upstream() {
	u := v.c.Upstream
	v.url("upstream.token_url", u.TokenURL)
	v.url("upstream.api_base", u.APIBase)
	if u.TenantParam == "" {
		v.add("upstream.tenant_param", "is empty")
	}
	if _, err := time.LoadLocation(u.QuotaZone); err != nil || u.QuotaZone == "" || u.QuotaZone == "Local" {
		v.add("upstream.quota_zone", "%q is not an IANA time zone (Europe/Oslo, UTC)", u.QuotaZone)
	}
	for path, d := range map[string]int64{
		"upstream.token_timeout": int64(u.TokenTimeout), "upstream.connect_timeout": int64(u.ConnectTimeout),
		"upstream.response_header_timeout": int64(u.ResponseHeaderTimeout), "upstream.idle_timeout": int64(u.IdleTimeout),
	} {
		if d <= 0 {
			v.add(path, "must be a positive duration")
		}
	}
}

func (v *validator) applications() {
	if len(v.c.Applications) == 0 {
		v.add("applications", "at least one application is required")
	}
	seen := map[string]bool{}
	for i, a := range v.c.Applications {
		p := fmt.Sprintf("applications[%d]", i)
		if err := messages.ValidateApplication(a.Name); err != nil {
			v.add(p+".name", "%s", stripToken(err))
		} else if seen[a.Name] {
			v.add(p+".name", "%q is named twice", a.Name)
		}
		seen[a.Name] = true
		if a.ClientID == "" {
			v.add(p+".client_id", "is required")
		}
		switch {
		case a.ClientSecretEnv != "" && a.ClientSecretFile != "":
			v.add(p+".client_secret_env", "set client_secret_env or client_secret_file, not both")
		case a.ClientSecretEnv == "" && a.ClientSecretFile == "" && a.ClientSecret.IsZero():
			v.add(p, "no secret: set client_secret_env (an environment variable's name) or client_secret_file")
		}
		if len(a.Scopes) == 0 {
			v.add(p+".scopes", "at least one scope is required (e.g. %s)", DemoScope)
		}
		switch r := a.RateLimit; {
		case r.Rate < 0 || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0):
			v.add(p+".rate_limit.rate", "%v is not a rate per second", r.Rate)
		case r.Rate > 0 && r.Burst < 1:
			v.add(p+".rate_limit.burst", "%d must be at least 1 when a rate is set", r.Burst)
		}
		if q := a.Quotas; q.Daily < 0 || q.Monthly < 0 {
			v.add(p+".quotas", "daily and monthly must not be negative")
		}
		for j, at := range a.Quotas.AlertAt {
			if at <= 0 || at > 1 {
				v.add(fmt.Sprintf("%s.quotas.alert_at[%d]", p, j), "%v is not a share in (0, 1]", at)
			}
		}
		for j := 1; j < len(a.Quotas.AlertAt); j++ {
			if a.Quotas.AlertAt[j] <= a.Quotas.AlertAt[j-1] {
				v.add(p+".quotas.alert_at", "%v must be ascending", a.Quotas.AlertAt)
				break
			}
		}
	}
}

func stripToken(err error) string {
	return strings.TrimPrefix(err.Error(), messages.ErrInvalidToken.Error()+": ")
}

func (v *validator) tenants() {
	seen := map[string]bool{}
	for i, t := range v.c.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		if err := messages.ValidateTenant(t.ID); err != nil {
			v.add(p+".id", "%s", stripToken(err))
		} else if seen[t.ID] {
			v.add(p+".id", "%q is listed twice", t.ID)
		}
		seen[t.ID] = true
		if msg := checkName(t.Name); msg != "" {
			v.add(p+".name", "%s", msg)
		}
		if _, ok := v.c.Application(t.Application); !ok {
			v.add(p+".application", "%q is not one of the applications", t.Application)
		}
		s := t.Schedule
		switch {
		case s.Interval < 0:
			v.add(p+".schedule.interval", "%s is negative", s.Interval)
		case s.Interval > 0 && s.Interval.Seconds() < 10:
			v.add(p+".schedule.interval", "%s is shorter than 10s", s.Interval)
		}
		if s.Jitter < 0 || (s.Interval > 0 && s.Jitter >= s.Interval) {
			v.add(p+".schedule.jitter", "%s must be at least 0 and less than the interval %s", s.Jitter, s.Interval)
		}
	}
}

func (v *validator) vendors() {
	seen := map[string]bool{}
	for i, vd := range v.c.Vendors {
		p := fmt.Sprintf("vendors[%d]", i)
		if err := messages.ValidateVendor(vd.Name); err != nil {
			v.add(p+".name", "%s", stripToken(err))
		} else if seen[vd.Name] {
			v.add(p+".name", "%q is named twice", vd.Name)
		}
		seen[vd.Name] = true
		linked := map[string]bool{}
		for j, t := range vd.Tenants {
			tp := fmt.Sprintf("%s.tenants[%d]", p, j)
			switch _, ok := v.c.Tenant(t); {
			case !ok:
				v.add(tp, "%q is not one of the tenants", t)
			case linked[t]:
				v.add(tp, "%q is listed twice", t)
			}
			linked[t] = true
		}
		parts := map[string]bool{}
		for j, part := range vd.Profile {
			pp := fmt.Sprintf("%s.profile[%d]", p, j)
			switch {
			case !slices.Contains(ProfileParts, part):
				v.add(pp, "%q is not a part; the parts are %s", part, strings.Join(ProfileParts, ", "))
			case parts[part]:
				v.add(pp, "%q is listed twice", part)
			}
			parts[part] = true
		}
		if vd.Delivery.Kind() == "" {
			v.add(p+".delivery", "no kind: give one, like delivery: {nats: {}}")
		}
	}
}

// MaxNameLen is the longest free-text name (a tenant's), in bytes.
const MaxNameLen = 200

// checkName says what is wrong with a free-text name, or "" when nothing:
// it must be valid UTF-8 of at most MaxNameLen bytes without control
// characters, line or paragraph separators, or the invisible bidirectional
// controls (U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069) that make a
// name read differently from what it is in logs and terminals.
func checkName(s string) string {
	if len(s) > MaxNameLen {
		return fmt.Sprintf("%q is %d bytes long, at most %d allowed", truncName(s), len(s), MaxNameLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%q is not valid UTF-8", truncName(s))
	}
	for i, r := range s {
		switch {
		case r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x061c:
			return fmt.Sprintf("%q has the bidirectional control U+%04X at byte %d", truncName(s), r, i)
		case r == 0x2028 || r == 0x2029:
			return fmt.Sprintf("%q has the separator U+%04X at byte %d", truncName(s), r, i)
		case unicode.IsControl(r):
			return fmt.Sprintf("%q has the control character U+%04X at byte %d", truncName(s), r, i)
		}
	}
	return ""
}

// redactUser is u as text with its user info shown as "***".
func redactUser(u *url.URL) string {
	c := *u
	c.User = nil
	return strings.Replace(c.String(), "://", "://***@", 1)
}

func truncName(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

func (v *validator) nats() {
	n := v.c.NATS
	creds := 0
	for _, set := range []bool{n.CredentialsFile != "", n.User != "" || n.PasswordEnv != "", n.TokenEnv != ""} {
		if set {
			creds++
		}
	}
	if creds > 1 {
		v.add("nats", "set at most one of credentials_file, user with password_env, and token_env")
	}
	if n.URL == "" && creds > 0 {
		v.add("nats.url", "credentials are for an external server; set url or remove them (the embedded server takes none)")
	}
	if n.User != "" && n.PasswordEnv == "" {
		v.add("nats.password_env", "user %q needs password_env", n.User)
	}
	if n.URL == "" && n.Replicas > 1 {
		v.add("nats.replicas", "%d replicas need a cluster (set url); the embedded server is one node", n.Replicas)
	}
	if n.URL == "" {
		e := n.Embedded
		if e.DataDir == "" {
			v.add("nats.embedded.data_dir", "is empty")
		}
		if e.Port < -1 || e.Port > 65535 {
			v.add("nats.embedded.port", "%d is out of range (-1 for a random port)", e.Port)
		}
		if e.Host != "" && e.Host != "localhost" && net.ParseIP(e.Host) == nil {
			v.add("nats.embedded.host", "%q is not an IP address or localhost", e.Host)
		}
	} else {
		for i, raw := range strings.Split(n.URL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			switch {
			case err != nil:
				v.add("nats.url", "URL %d of the list does not parse", i+1)
			case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
				v.add("nats.url", "scheme %q of %q is not nats, tls, ws or wss", u.Scheme, u.Redacted())
			case u.Host == "":
				v.add("nats.url", "%q has no host", u.Redacted())
			case u.User != nil:
				v.add("nats.url", "%q carries credentials, which the process list and the environment would show: "+
					"remove them from the URL and give nats.user with nats.password_env (--nats-user, $SKOLEBUSS_NATS_USER, "+
					"$SKOLEBUSS_NATS_PASSWORD_ENV), nats.token_env, or nats.credentials_file (--nats-creds)", redactUser(u))
			}
		}
	}
	if n.Replicas < 0 || n.Replicas > 5 {
		v.add("nats.replicas", "%d is out of range 1..5", n.Replicas)
	}
	if w := n.DuplicateWindow; w < 0 || w > LMSMaxAge {
		v.add("nats.duplicate_window", "%s must be positive and within the LMS stream's max age %s", w, LMSMaxAge)
	}
}
