package config

import (
	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// Auth is the token source's configuration: endpoint, tenant parameter,
// timeouts and every application with its (resolved) secret.
func (c *Config) Auth() auth.Config {
	a := auth.Config{TokenURL: c.Upstream.TokenURL, TenantParam: c.Upstream.TenantParam,
		RequestTimeout: c.Upstream.TokenTimeout, ConnectTimeout: c.Upstream.ConnectTimeout}
	for _, app := range c.Applications {
		a.Applications = append(a.Applications, auth.Application{Name: app.Name, ClientID: app.ClientID,
			ClientSecret: app.ClientSecret, Scopes: append([]string(nil), app.Scopes...)})
	}
	return a
}

// FlytAPI is the export client's configuration.
func (c *Config) FlytAPI() flytapi.Config {
	return flytapi.Config{APIBase: c.Upstream.APIBase, ConnectTimeout: c.Upstream.ConnectTimeout,
		ResponseHeaderTimeout: c.Upstream.ResponseHeaderTimeout, IdleTimeout: c.Upstream.IdleTimeout}
}

// Limits are the application's rate limit and quotas for internal/quota.
func (a Application) Limits() quota.Limits {
	return quota.Limits{Rate: a.RateLimit.Rate, Burst: a.RateLimit.Burst, Daily: a.Quotas.Daily,
		Monthly: a.Quotas.Monthly, AlertAt: append([]float64(nil), a.Quotas.AlertAt...)}
}

// Bus is the NATS configuration for internal/bus: the external URL or the
// embedded server, credentials (resolved by ResolveSecrets), replicas and
// the event stream's duplicate window.
func (c *Config) Bus() bus.Config {
	n := c.NATS
	return bus.Config{
		URL: n.URL,
		Embedded: bus.EmbeddedConfig{DataDir: n.Embedded.DataDir, Host: n.Embedded.Host, Port: n.Embedded.Port,
			SyncAlways: n.Embedded.SyncAlways},
		CredsFile: n.CredentialsFile, User: n.User, Password: n.Password, Token: n.Token,
		Provision: bus.ProvisionConfig{Replicas: n.Replicas, DuplicateWindow: n.DuplicateWindow},
	}
}

// TelemetryConfig is the configuration of internal/telemetry.
func (c *Config) TelemetryConfig() telemetry.Config {
	return telemetry.Config{OTLPEndpoint: c.Telemetry.OTLPEndpoint, ServiceName: c.Telemetry.ServiceName,
		SampleRatio: c.Telemetry.SampleRatio}
}
