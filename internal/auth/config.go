package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// AuthStyle says how the client id and secret reach the token endpoint.
type AuthStyle string

const (
	// AuthInParams sends client_id and client_secret as form parameters, as
	// the Flyt Skole documentation shows. The default.
	AuthInParams AuthStyle = "params"
	// AuthInHeader sends them as HTTP Basic authentication.
	AuthInHeader AuthStyle = "header"
)

// DefaultTenantParam is the name of the token request's tenant parameter.
const DefaultTenantParam = "tenant_ID"

// Application is one OAuth client registered upstream: an LMS vendor's
// integration with its scopes. Its secret prints as "[redacted]".
type Application struct {
	// Name is the key by which jobs name the application (Key.App).
	Name         string   `yaml:"name"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret Secret   `yaml:"-"` // filled by main from a file or the environment, never inline
	Scopes       []string `yaml:"scopes"`
}

// Config configures a Source. The zero value of each field except TokenURL
// and Applications takes the documented default (see WithDefaults).
type Config struct {
	// TokenURL is the token endpoint, e.g. https://connect.visma.com/connect/token.
	TokenURL string `yaml:"token_url"`
	// TenantParam names the form parameter that carries the tenant id.
	// Default "tenant_ID".
	TenantParam string `yaml:"tenant_param"`
	// AuthStyle is "params" (default) or "header".
	AuthStyle AuthStyle `yaml:"auth_style"`
	// RenewBefore is the margin: a token is renewed once less than this is
	// left of its life (for a token shorter-lived than 2×RenewBefore, once
	// half its life is gone). Default 60s.
	RenewBefore time.Duration `yaml:"renew_before"`
	// RequestTimeout bounds one token request, connect to last byte.
	// Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// ConnectTimeout bounds the TCP (and TLS) connect. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Applications are the OAuth clients this Source holds tokens for.
	Applications []Application `yaml:"applications"`

	// Transport, if set, is the base RoundTripper for token requests (tests
	// wrap the real transport to count requests). It is wrapped in otelhttp.
	Transport http.RoundTripper `yaml:"-"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.TenantParam == "" {
		c.TenantParam = DefaultTenantParam
	}
	if c.AuthStyle == "" {
		c.AuthStyle = AuthInParams
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = 60 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	return c
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	var errs []error
	if c.TokenURL == "" {
		errs = append(errs, errors.New("token_url: missing"))
	} else if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("token_url: %q is not an absolute http(s) URL", c.TokenURL))
	}
	if c.TenantParam == "" {
		errs = append(errs, errors.New("tenant_param: empty"))
	}
	switch c.AuthStyle {
	case AuthInParams, AuthInHeader:
	default:
		errs = append(errs, fmt.Errorf("auth_style: %q is neither %q nor %q", c.AuthStyle, AuthInParams, AuthInHeader))
	}
	if c.RenewBefore < 0 {
		errs = append(errs, fmt.Errorf("renew_before: %s is negative", c.RenewBefore))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request_timeout: %s is not positive", c.RequestTimeout))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("connect_timeout: %s is not positive", c.ConnectTimeout))
	}
	if len(c.Applications) == 0 {
		errs = append(errs, errors.New("applications: none configured"))
	}
	seen := map[string]bool{}
	for i, a := range c.Applications {
		switch {
		case a.Name == "":
			errs = append(errs, fmt.Errorf("applications[%d].name: missing", i))
		case seen[a.Name]:
			errs = append(errs, fmt.Errorf("applications[%d].name: %q appears twice", i, a.Name))
		}
		seen[a.Name] = true
		if a.ClientID == "" {
			errs = append(errs, fmt.Errorf("applications[%d] (%s).client_id: missing", i, a.Name))
		}
		if a.ClientSecret.IsZero() {
			errs = append(errs, fmt.Errorf("applications[%d] (%s).client_secret: missing", i, a.Name))
		}
	}
	return errors.Join(errs...)
}
