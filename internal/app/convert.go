// Package app wires skolebuss from its configuration. It is the one place
// where the loaded config.Config becomes each package's own configuration
// (configuration flows one way: package config knows no other package's
// types, and no stage imports config), and the one place where each stage
// is built: its daemon in cmd/, `skolebuss demo` and `skolebuss bench` all
// call the same constructor here.
package app

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/fetcher"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// AuthConfig is the token source's configuration: endpoint, tenant
// parameter, timeouts and every application with its resolved secret.
func AuthConfig(c *config.Config) auth.Config {
	a := auth.Config{TokenURL: c.Upstream.TokenURL, TenantParam: c.Upstream.TenantParam,
		RequestTimeout: c.Upstream.TokenTimeout, ConnectTimeout: c.Upstream.ConnectTimeout}
	for _, app := range c.Applications {
		a.Applications = append(a.Applications, auth.Application{Name: app.Name, ClientID: app.ClientID,
			ClientSecret: app.ClientSecret, Scopes: append([]string(nil), app.Scopes...)})
	}
	return a
}

// FlytAPIConfig is the export client's configuration.
func FlytAPIConfig(c *config.Config) flytapi.Config {
	return flytapi.Config{APIBase: c.Upstream.APIBase, ConnectTimeout: c.Upstream.ConnectTimeout,
		ResponseHeaderTimeout: c.Upstream.ResponseHeaderTimeout, IdleTimeout: c.Upstream.IdleTimeout}
}

// Limits are an application's rate limit and quotas for internal/quota,
// counted in the upstream's quota zone.
func Limits(c *config.Config, a config.Application) quota.Limits {
	return quota.Limits{Rate: a.RateLimit.Rate, Burst: a.RateLimit.Burst, Daily: a.Quotas.Daily,
		Monthly: a.Quotas.Monthly, AlertAt: append([]float64(nil), a.Quotas.AlertAt...), Zone: c.Upstream.QuotaLocation()}
}

// BusConfig is the NATS configuration for internal/bus: the external URL or
// the embedded server, the credentials (resolved by ResolveSecrets),
// replicas and the event stream's duplicate window. name identifies the
// process in the server's monitoring. With vendors, the embedded server
// admits only its users (EmbeddedUsers).
func BusConfig(c *config.Config, name string) bus.Config {
	n := c.NATS
	return bus.Config{
		URL:  n.URL,
		Name: name,
		Embedded: bus.EmbeddedConfig{DataDir: n.Embedded.DataDir, Host: n.Embedded.Host, Port: n.Embedded.Port,
			SyncAlways: n.Embedded.SyncAlways, Users: EmbeddedUsers(c)},
		CredsFile: n.CredentialsFile, User: n.User, Password: n.Password, Token: n.Token,
		Provision: bus.ProvisionConfig{Replicas: n.Replicas, DuplicateWindow: n.DuplicateWindow,
			LMSMaxAge: config.LMSMaxAge},
	}
}

// EmbeddedUsers are the users the embedded server admits when c has
// vendors: each vendor's, vendor-<name> with natsauth's permissions and its
// password from VendorPasswordEnv (or made by the server at each start and
// written to its credentials directory when the variable is not set). The
// server adds its own user (bus.EmbeddedUserName) for the pipeline. None
// without vendors: the server then admits every client, as before vendors
// existed.
func EmbeddedUsers(c *config.Config) []bus.EmbeddedUser {
	var out []bus.EmbeddedUser
	for _, v := range c.Vendors {
		out = append(out, bus.EmbeddedUser{Name: natsauth.UserName(v.Name), PasswordEnv: VendorPasswordEnv(v.Name),
			Permissions: natsauth.VendorPermissions(v.Name).Server()})
	}
	return out
}

// ClientBusConfig is BusConfig for a process that joins a server another
// process runs: without nats.url it dials the address the embedded server
// of the same configuration listens on (nats://127.0.0.1:4222 by default).
// When no credentials are configured and the URL is one server's, it
// connects as the embedded server's own user (bus.EmbeddedUserName) if an
// embedded server on that host and port wrote its password into its
// credentials directory (it does when it admits its users only: with
// vendors configured; a process of another OS user cannot read it).
//
// A user that is one of the pipeline's identities in natsauth's description
// (a stage's, provision's) gets its inbox prefix, and a stage's the streams
// and stores Open checks instead of provisioning (bus.Config.Verify).
func ClientBusConfig(c *config.Config, name string) bus.Config {
	return asIdentity(clientBusConfig(c, name), c)
}

func clientBusConfig(c *config.Config, name string) bus.Config {
	bc := BusConfig(c, name)
	bc.Embedded.Users = nil // it runs no server
	if bc.URL == "" {
		host, port := bc.Embedded.Host, bc.Embedded.Port
		if host == "" {
			host = "127.0.0.1"
		}
		if port <= 0 {
			port = 4222
		}
		bc.URL = "nats://" + net.JoinHostPort(host, strconv.Itoa(port))
	}
	if bc.CredsFile != "" || bc.User != "" || !bc.Token.IsZero() || strings.Contains(bc.URL, ",") {
		return bc
	}
	u, err := url.Parse(bc.URL)
	if err != nil || u.User != nil {
		return bc
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return bc
	}
	if dir, err := bus.EmbeddedCredentialsDir(u.Hostname(), port); err == nil {
		if pw, err := bus.ReadEmbeddedPassword(dir); err == nil {
			bc.User, bc.Password = bus.EmbeddedUserName, pw
		}
	}
	return bc
}

// asIdentity gives bc what its user's identity in natsauth's description
// says, when the user is one of the pipeline's (not the operator): its
// inbox prefix, the only one the server lets it receive on, and for a
// stage the streams and stores Open checks instead of provisioning them (a
// stage's user may not create them: `skolebuss provision` does).
func asIdentity(bc bus.Config, c *config.Config) bus.Config {
	id, ok := natsauth.StageIdentity(bc.User, VendorNames(c))
	if !ok || id.All {
		return bc
	}
	bc.InboxPrefix = id.InboxPrefix
	if id.Name != natsauth.Provision {
		bc.Verify = id.Uses()
	}
	return bc
}

// TelemetryConfig is the configuration of internal/telemetry.
func TelemetryConfig(c *config.Config) telemetry.Config {
	return telemetry.Config{OTLPEndpoint: c.Telemetry.OTLPEndpoint, ServiceName: c.Telemetry.ServiceName,
		SampleRatio: c.Telemetry.SampleRatio}
}

// RequesterConfig is every tenant with its schedule.
func RequesterConfig(c *config.Config) requester.Config {
	var rc requester.Config
	for _, t := range c.Tenants {
		rc.Tenants = append(rc.Tenants, requester.Tenant{
			ID: t.ID, Application: t.Application, Interval: t.Schedule.Interval, Jitter: t.Schedule.Jitter,
		})
	}
	return rc
}

// FetcherConfig is the upstream, every application's limits, the bounds of
// an export (upstream's, and each tenant's own where it sets them), the
// replicas and the retry policy; the rest keeps the fetcher's defaults.
func FetcherConfig(c *config.Config) fetcher.Config {
	fc := fetcher.Config{API: FlytAPIConfig(c), Applications: map[string]quota.Limits{}, Replicas: c.NATS.Replicas,
		MaxAttempts: c.Retry.MaxAttempts, Backoff: c.Retry.Backoff,
		Bounds: fetcher.Bounds{Deadline: c.Upstream.ExportDeadline, MaxSize: int64(c.Upstream.MaxExportSize)}}
	for _, a := range c.Applications {
		fc.Applications[a.Name] = Limits(c, a)
	}
	for _, t := range c.Tenants {
		if t.ExportDeadline == 0 && t.MaxExportSize == 0 {
			continue
		}
		if fc.TenantBounds == nil {
			fc.TenantBounds = map[string]fetcher.Bounds{}
		}
		d, size := c.ExportBounds(t)
		fc.TenantBounds[t.ID] = fetcher.Bounds{Deadline: d, MaxSize: int64(size)}
	}
	return fc
}

// DiffConfig is the publisher's diff: its spool directory and deletion
// threshold.
func DiffConfig(c *config.Config) diff.Config {
	return diff.Config{SpoolDir: c.Publisher.SpoolDir, DeleteThreshold: c.Publisher.DeleteThreshold}
}

// PublisherConfig is the publisher's configuration, less its logger and
// telemetry, which NewPublisher adds.
func PublisherConfig(c *config.Config) publisher.Config {
	return publisher.Config{Diff: DiffConfig(c)}
}

// FanoutConfig is every vendor with its linked tenants and its profile, and
// the replicas of its consumer. A profile the configuration validated always
// parses; an error here is a configuration built in code and not validated.
func FanoutConfig(c *config.Config) (fanout.Config, error) {
	fc := fanout.Config{Replicas: c.NATS.Replicas, CacheEvents: c.Fanout.CacheEvents}
	if fc.CacheEvents == 0 {
		fc.CacheEvents = -1 // none held (0 is the fan-out's default)
	}
	for _, v := range c.Vendors {
		p, err := projection.ParseProfile(v.Parts()...)
		if err != nil {
			return fanout.Config{}, fmt.Errorf("vendor %s: %w", v.Name, err)
		}
		fc.Vendors = append(fc.Vendors, fanout.Vendor{Name: v.Name, Tenants: append([]string(nil), v.Tenants...), Profile: p})
	}
	return fc, nil
}

// VendorNames are the names of the configuration's vendors, for
// bus.ProvisionVendors.
func VendorNames(c *config.Config) []string {
	var out []string
	for _, v := range c.Vendors {
		out = append(out, v.Name)
	}
	return out
}

// VendorPasswordEnv is the environment variable the NATS server reads vendor's
// password from: SKOLEBUSS_VENDOR_<NAME>_PASSWORD, the name upper-cased with
// '-' as '_' (itslearning-demo: SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD).
func VendorPasswordEnv(vendor string) string {
	return "SKOLEBUSS_VENDOR_" + strings.ToUpper(strings.ReplaceAll(vendor, "-", "_")) + "_PASSWORD"
}

// NATSAuthVendors are the NATS users of the configuration's vendors, for
// natsauth.Write: each vendor's password named by VendorPasswordEnv.
func NATSAuthVendors(c *config.Config) []natsauth.Vendor {
	var out []natsauth.Vendor
	for _, v := range c.Vendors {
		out = append(out, natsauth.Vendor{Name: v.Name, Password: natsauth.Password{Env: VendorPasswordEnv(v.Name)}})
	}
	return out
}

// WriteNATSUsers writes the users list `skolebuss vendors nats-config`
// writes for c: the vendors' users (NATSAuthVendors), after the stages' and
// the operator's as deploy/nats runs them (natsauth.StageUsers) when stages
// is set.
func WriteNATSUsers(w io.Writer, c *config.Config, stages bool) error {
	var others []natsauth.User
	if stages {
		others = natsauth.StageUsers(VendorNames(c))
	}
	return natsauth.Write(w, NATSAuthVendors(c), others...)
}
