package app

import (
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/fetcher"
)

// The configuration's values reach each package's configuration.
func TestConvert(t *testing.T) {
	c := config.Demo()
	c.NATS.Replicas = 3
	c.Retry = config.Retry{MaxAttempts: 9, Backoff: []time.Duration{2 * time.Second, time.Minute}}
	c.Publisher.DeleteThreshold = 0.3

	fc := FetcherConfig(c)
	if fc.Replicas != 3 || fc.MaxAttempts != 9 || len(fc.Backoff) != 2 || fc.Backoff[1] != time.Minute {
		t.Errorf("fetcher replicas %d, attempts %d, backoff %v; want the config's 3, 9 and [2s 1m]", fc.Replicas, fc.MaxAttempts, fc.Backoff)
	}
	if l := fc.Applications[config.DemoApplication]; l.Rate != 5 || l.Daily != 10000 || len(l.AlertAt) != 2 || l.Zone != time.UTC {
		t.Errorf("limits of the demo application: %+v", l)
	}
	c.Upstream.QuotaZone = "Europe/Oslo"
	if z := FetcherConfig(c).Applications[config.DemoApplication].Zone; z == nil || z.String() != "Europe/Oslo" {
		t.Errorf("quota zone %v, want the configuration's Europe/Oslo", z)
	}
	c.Upstream.QuotaZone = "UTC"
	if b := fc.Bounds; b.Deadline != config.DefaultExportDeadline || b.MaxSize != int64(config.DefaultMaxExportSize) || fc.TenantBounds != nil {
		t.Errorf("bounds %+v, tenants' %+v; want the defaults, no tenant's own", b, fc.TenantBounds)
	}
	if fetcher.DefaultExportDeadline != config.DefaultExportDeadline || fetcher.DefaultMaxExportSize != int64(config.DefaultMaxExportSize) {
		t.Error("the fetcher's default bounds differ from the configuration's")
	}
	c.Tenants[1].MaxExportSize = 3 << 30
	if b := FetcherConfig(c).TenantBounds[c.Tenants[1].ID]; b.MaxSize != 3<<30 || b.Deadline != config.DefaultExportDeadline {
		t.Errorf("a tenant's own bound: %+v", b)
	}
	c.Tenants[1].MaxExportSize = 0
	if fc.API.APIBase != config.SandboxAPIBase {
		t.Errorf("api base %q", fc.API.APIBase)
	}
	if a := AuthConfig(c); len(a.Applications) != 1 || a.Applications[0].ClientSecret.Reveal() != config.DemoSecret {
		t.Errorf("auth applications %+v", a.Applications)
	}
	b := BusConfig(c, "x")
	if b.URL != "" || b.Name != "x" || b.Embedded.Port != 4222 || b.Provision.Replicas != 3 || b.Provision.LMSMaxAge != config.LMSMaxAge {
		t.Errorf("bus %+v", b)
	}
	if cb := ClientBusConfig(c, "x"); cb.URL != "nats://127.0.0.1:4222" {
		t.Errorf("a client of the embedded server dials %q", cb.URL)
	}
	c.NATS.URL = "nats://n1:4222"
	if cb := ClientBusConfig(c, "x"); cb.URL != "nats://n1:4222" {
		t.Errorf("a client dials %q, want nats.url", cb.URL)
	}
	if rc := RequesterConfig(c); len(rc.Tenants) != 3 || rc.Tenants[0].Interval != 10*time.Minute {
		t.Errorf("requester tenants %+v", rc.Tenants)
	}
	if d := DiffConfig(c); d.DeleteThreshold != 0.3 || d.SpoolDir != c.Publisher.SpoolDir {
		t.Errorf("diff %+v", d)
	}
	fo, err := FanoutConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(fo.Vendors) != 2 || fo.Replicas != 3 || fo.CacheEvents != config.DefaultCacheEvents {
		t.Fatalf("fan-out %+v", fo)
	}
	if v := fo.Vendors[0]; v.Name != config.DemoVendorContact || len(v.Tenants) != 3 || v.Profile.String() != "roster+contact" {
		t.Errorf("fan-out vendor %+v (%s)", v, v.Profile)
	}
	if v := fo.Vendors[1]; v.Name != config.DemoVendorRoster || len(v.Tenants) != 2 || v.Profile.String() != "roster" {
		t.Errorf("fan-out vendor %+v (%s)", v, v.Profile)
	}
	if err := fo.Validate(); err != nil {
		t.Error(err)
	}
	c.Fanout.CacheEvents = 0 // none held
	if fo, _ := FanoutConfig(c); fo.CacheEvents >= 0 {
		t.Errorf("fanout.cache_events 0 gives the fan-out %d, want none held (negative)", fo.CacheEvents)
	}
	nv := NATSAuthVendors(c)
	if len(nv) != 2 || nv[0].Name != config.DemoVendorContact || nv[0].Password.Env != "SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD" ||
		nv[1].Password.Env != "SKOLEBUSS_VENDOR_ROSTER_ONLY_DEMO_PASSWORD" {
		t.Errorf("NATS users of the vendors %+v", nv)
	}
	for _, v := range nv {
		if err := v.Password.Validate(); err != nil {
			t.Error(err)
		}
	}
}
