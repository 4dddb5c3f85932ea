package flytapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// DefaultExportPath is the export endpoint below the API base.
const DefaultExportPath = "/api/external/lms/pifu"

// Config configures a Client. Zero fields other than APIBase take the
// defaults of WithDefaults.
type Config struct {
	// APIBase is the API's scheme and host, e.g. https://skole.visma.com.
	APIBase string `yaml:"api_base"`
	// ExportPath is the export endpoint's path. Default DefaultExportPath.
	ExportPath string `yaml:"export_path"`
	// ConnectTimeout bounds the TCP and TLS connect. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ResponseHeaderTimeout bounds the wait for the answer's headers once
	// the request is sent (the upstream builds the export first). Default 2m.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// IdleTimeout aborts a body read that makes no progress for this long;
	// a slow but moving body is never cut. There is no overall limit on
	// reading the body besides the caller's context (the fetcher's export
	// deadline is one). Default 2m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// DefaultRetryAfter is the wait given to a 429 that names none.
	// Default 30s.
	DefaultRetryAfter time.Duration `yaml:"default_retry_after"`
	// UserAgent is sent with every request. Default "skolebuss".
	UserAgent string `yaml:"user_agent"`

	// Transport, if set, is the base RoundTripper (tests wrap the real one).
	// It is wrapped in otelhttp.
	Transport http.RoundTripper `yaml:"-"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.ExportPath == "" {
		c.ExportPath = DefaultExportPath
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = 2 * time.Minute
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.DefaultRetryAfter == 0 {
		c.DefaultRetryAfter = 30 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "skolebuss"
	}
	return c
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	var errs []error
	if c.APIBase == "" {
		errs = append(errs, errors.New("api_base: missing"))
	} else if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("api_base: %q is not an absolute http(s) URL", c.APIBase))
	} else if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("api_base: %q must not carry a query or fragment", c.APIBase))
	}
	if c.ExportPath == "" || c.ExportPath[0] != '/' {
		errs = append(errs, fmt.Errorf("export_path: %q must start with /", c.ExportPath))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"connect_timeout", c.ConnectTimeout}, {"response_header_timeout", c.ResponseHeaderTimeout},
		{"idle_timeout", c.IdleTimeout}, {"default_retry_after", c.DefaultRetryAfter},
	} {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %s is not positive", f.name, f.d))
		}
	}
	return errors.Join(errs...)
}
