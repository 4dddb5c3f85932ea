package config

import (
	"strings"
	"testing"
	"time"
)

const boundsBase = `upstream:
  token_url: http://127.0.0.1:8765/connect/token
  api_base: http://127.0.0.1:8765
%s
applications:
  - name: app
    client_id: app
    client_secret_env: APP_SECRET
    scopes: [vfsapi:lmsexport]
tenants:
  - id: aa750693-e3ea-441b-93fe-6a71a8371afa
    application: app
%s
`

func boundsFile(upstream, tenant string) []byte {
	return []byte(strings.Replace(strings.Replace(boundsBase, "%s", upstream, 1), "%s", tenant, 1))
}

// The bounds default to 1GiB and 30m; a file's own, and a tenant's own,
// replace them.
func TestExportBounds(t *testing.T) {
	c, err := Parse("t.yaml", boundsFile("", ""))
	if err != nil {
		t.Fatal(err)
	}
	if d, s := c.ExportBounds(c.Tenants[0]); d != 30*time.Minute || s != 1<<30 {
		t.Errorf("defaults: %s %s, want 30m 1GiB", d, s)
	}
	c, err = Parse("t.yaml", boundsFile("  export_deadline: 10m\n  max_export_size: 800MB", "    max_export_size: 2GiB"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.MaxExportSize != 800e6 || c.Upstream.ExportDeadline != 10*time.Minute {
		t.Errorf("upstream: %d %s", c.Upstream.MaxExportSize, c.Upstream.ExportDeadline)
	}
	if d, s := c.ExportBounds(c.Tenants[0]); d != 10*time.Minute || s != 2<<30 || s.String() != "2GiB" {
		t.Errorf("tenant's own: %s %s, want 10m 2GiB", d, s)
	}
}

func TestBadExportBounds(t *testing.T) {
	cases := []struct {
		upstream, tenant, want string
	}{
		{"  max_export_size: lots", "", `t.yaml:4: upstream.max_export_size: "lots" is not a size like 1GiB`},
		{"  max_export_size: -1MB", "", `upstream.max_export_size: "-1MB" is not a size`},
		{"  max_export_size: 100", "", "t.yaml:4: upstream.max_export_size: 100B is smaller than 1KiB"},
		{"  export_deadline: 0s", "", "t.yaml:4: upstream.export_deadline: 0s must be a positive duration"},
		{"", "    export_deadline: 10ms", "t.yaml:13: tenants[0].export_deadline: 10ms is shorter than 1s"},
		{"", "    max_export_size: 9999999999999999999GiB", `tenants[0].max_export_size: "9999999999999999999GiB" is not a size`},
	}
	for _, c := range cases {
		_, err := Parse("t.yaml", boundsFile(c.upstream, c.tenant))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: %v; want %q", c.upstream, c.tenant, err, c.want)
		}
	}
}
