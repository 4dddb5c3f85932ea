// Package auth gets and keeps OAuth 2.0 client-credentials tokens for the
// upstream API: one token per (application, tenant), cached, renewed before it
// expires, dropped when the API rejects it.
//
// Tokens are fetched on a background context owned by the Source, never on a
// caller's context: golang.org/x/oauth2 keeps the context it is given for
// every later refresh, so a cancelled request context would break them. A
// caller's context only bounds how long that caller waits.
//
// Token endpoint failures are classified with internal/failure: rejected
// credentials, scope or tenant are Permanent (the reason is the OAuth error
// code), and so is a token whose tenant claim names another tenant (see
// checkTenantClaim); 429 and 503 with Retry-After are Throttled, other 5xx, timeouts and
// resets are Transient. Secrets and tokens never appear in errors, logs or
// printed values.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/upstreamhttp"
)

// Key names one cached token: an application (Application.Name) and a tenant.
type Key struct {
	App    string
	Tenant string
}

func (k Key) String() string { return k.App + "/" + k.Tenant }

// Token is an access token. Its value prints as "[redacted]" in every form;
// use SetAuthHeader to send it.
type Token struct {
	Access Secret
	Type   string    // "Bearer" unless the endpoint says otherwise
	Expiry time.Time // zero if the endpoint gave no expires_in
}

// SetAuthHeader sets r's Authorization header to the token.
func (t Token) SetAuthHeader(r *http.Request) {
	typ := t.Type
	if typ == "" || typ == "bearer" {
		typ = "Bearer"
	}
	r.Header.Set("Authorization", typ+" "+t.Access.Reveal())
}

type entry struct {
	tok     Token
	renewAt time.Time // zero: keep until invalidated
	// usableUntil ends the grace after renewAt in which the token is still
	// handed out when its renewal fails: a little before it expires.
	usableUntil time.Time
}

// Source hands out tokens per Key. It is safe for concurrent use. Concurrent
// callers asking for the same Key while no valid token is cached cause
// exactly one token request; they all get its result.
type Source struct {
	cfg    Config
	apps   map[string]Application
	logger *slog.Logger
	tracer trace.Tracer

	bg   context.Context // carries the HTTP client; cancelled by Close only
	stop context.CancelFunc

	group singleflight.Group
	mu    sync.Mutex
	cache map[Key]entry
}

// New returns a Source for cfg (defaults applied, then validated). Token
// requests go through an otelhttp-traced client built from cfg.Transport (or
// a transport with cfg.ConnectTimeout). tp may be nil (no tracing). Call Close
// when done.
func New(cfg Config, logger *slog.Logger, tp trace.TracerProvider) (*Source, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if tp == nil {
		tp = trace.NewNoopTracerProvider()
	}
	base := cfg.Transport
	if base == nil {
		base = upstreamhttp.NewTransport(cfg.ConnectTimeout, cfg.RequestTimeout, 4)
	}
	client := &http.Client{Transport: otelhttp.NewTransport(tokenResponseCheck{base},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "POST token" }),
	)}
	bg, stop := context.WithCancel(context.WithValue(context.Background(), oauth2.HTTPClient, client))
	apps := make(map[string]Application, len(cfg.Applications))
	for _, a := range cfg.Applications {
		apps[a.Name] = a
	}
	return &Source{
		cfg:    cfg,
		apps:   apps,
		logger: logger,
		tracer: tp.Tracer("github.com/skolebuss/skolebuss/internal/auth"),
		bg:     bg,
		stop:   stop,
		cache:  map[Key]entry{},
	}, nil
}

// Close aborts token requests in flight; later calls to Token fail with a
// Canceled error.
func (s *Source) Close() { s.stop() }

// Token returns a valid token for key: the cached one, or a new one if none
// is cached or the cached one is due for renewal. A renewal that fails
// (other than permanently) while the cached token has some life left
// returns the cached token; the next call tries the renewal again. ctx
// bounds only the wait: if it ends first, Token returns ctx's error (class
// Canceled or Transient) and the token request goes on for the other
// callers and the cache.
func (s *Source) Token(ctx context.Context, key Key) (Token, error) {
	if t, ok := s.cached(key); ok {
		return t, nil
	}
	if err := ctx.Err(); err != nil {
		return Token{}, fmt.Errorf("token for %s: %w", key, err)
	}
	// The request span of the first caller becomes the token span's parent;
	// only its span context travels, not its cancellation.
	parent := trace.SpanContextFromContext(ctx)
	ch := s.group.DoChan(key.App+"\x00"+key.Tenant, func() (any, error) {
		if t, ok := s.cached(key); ok {
			return t, nil
		}
		return s.fetch(parent, key)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			if t, ok := s.stillUsable(key); ok && !failure.IsPermanent(r.Err) {
				s.logger.Warn("token renewal failed; the current token serves until it expires",
					"app", key.App, "tenant", key.Tenant, "expires_at", t.Expiry,
					"class", failure.ClassOf(r.Err).String(), "reason", failure.ReasonOf(r.Err))
				return t, nil
			}
			return Token{}, r.Err
		}
		return r.Val.(Token), nil
	case <-ctx.Done():
		return Token{}, fmt.Errorf("token for %s: %w", key, ctx.Err())
	}
}

// Invalidate drops the cached token for key if it is rejected (the token the
// API refused), so the next Token call fetches a new one. A token fetched in
// the meantime by another caller stays. The zero Token drops whatever is
// cached for key.
func (s *Source) Invalidate(key Key, rejected Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cache[key]; ok && (rejected.Access == "" || e.tok.Access == rejected.Access) {
		delete(s.cache, key)
		s.logger.Debug("token dropped", "app", key.App, "tenant", key.Tenant)
	}
}

func (s *Source) cached(key Key) (Token, bool) {
	s.mu.Lock()
	e, ok := s.cache[key]
	s.mu.Unlock()
	if !ok {
		return Token{}, false
	}
	if !e.renewAt.IsZero() && !time.Now().Before(e.renewAt) {
		return Token{}, false
	}
	return e.tok, true
}

// stillUsable returns the cached token for key if it has not reached its
// usableUntil (it is due for renewal, but not about to expire). A token the
// API rejected is not cached any more, so it is never returned here.
func (s *Source) stillUsable(key Key) (Token, bool) {
	s.mu.Lock()
	e, ok := s.cache[key]
	s.mu.Unlock()
	if !ok || e.usableUntil.IsZero() || !time.Now().Before(e.usableUntil) {
		return Token{}, false
	}
	return e.tok, true
}

// fetch requests a token for key on the Source's background context.
func (s *Source) fetch(parent trace.SpanContext, key Key) (Token, error) {
	app, ok := s.apps[key.App]
	if !ok {
		return Token{}, failure.Permanentf(failure.ReasonUnknownApplication, "token for %s: application %q is not configured", key, key.App)
	}
	ctx, cancel := context.WithTimeout(s.bg, s.cfg.RequestTimeout)
	defer cancel()
	ctx = trace.ContextWithSpanContext(ctx, parent)
	ctx, span := s.tracer.Start(ctx, "auth.token", trace.WithAttributes(
		telemetry.KeyValues(telemetry.Application(key.App), telemetry.Tenant(key.Tenant))...))
	defer span.End()

	style := oauth2.AuthStyleInParams
	if s.cfg.AuthStyle == AuthInHeader {
		style = oauth2.AuthStyleInHeader
	}
	cc := clientcredentials.Config{
		ClientID:       app.ClientID,
		ClientSecret:   app.ClientSecret.Reveal(),
		TokenURL:       s.cfg.TokenURL,
		Scopes:         app.Scopes,
		EndpointParams: url.Values{s.cfg.TenantParam: {key.Tenant}},
		AuthStyle:      style,
	}
	start := time.Now()
	ot, err := cc.Token(ctx)
	if err != nil {
		cerr := classify(key, app, err, s.bg.Err() != nil)
		telemetry.RecordError(span, cerr)
		s.logger.Warn("token request failed", "app", key.App, "tenant", key.Tenant,
			"class", failure.ClassOf(cerr).String(), "reason", failure.ReasonOf(cerr))
		return Token{}, cerr
	}
	if err := checkTenantClaim(ot.AccessToken, key); err != nil {
		telemetry.RecordError(span, err)
		s.logger.Warn("token refused: issued for another tenant", "app", key.App, "tenant", key.Tenant,
			"class", failure.ClassOf(err).String(), "reason", failure.ReasonOf(err))
		return Token{}, err
	}
	tok := Token{Access: Secret(ot.AccessToken), Type: ot.TokenType, Expiry: ot.Expiry}
	var renewAt, usableUntil time.Time
	if !ot.Expiry.IsZero() {
		life := ot.Expiry.Sub(start)
		renewAt = ot.Expiry.Add(-min(s.cfg.RenewBefore, life/2))
		// Stop handing out a token whose renewal fails a little before
		// it expires (clock skew, the request still to be sent), but not
		// before renewAt.
		usableUntil = ot.Expiry.Add(-min(expiryMargin, life/4))
		if usableUntil.Before(renewAt) {
			usableUntil = renewAt
		}
	}
	s.mu.Lock()
	s.cache[key] = entry{tok: tok, renewAt: renewAt, usableUntil: usableUntil}
	s.mu.Unlock()
	s.logger.Debug("token fetched", "app", key.App, "tenant", key.Tenant, "expires_at", ot.Expiry)
	return tok, nil
}

// expiryMargin is how long before its expiry a token whose renewal failed
// stops being handed out (for a short-lived token, a quarter of its life).
const expiryMargin = 10 * time.Second

// errClosed is the cause when the Source was closed during a request.
var errClosed = errors.New("token source closed")

// String describes the Source without its secrets or tokens.
func (s *Source) String() string {
	names := make([]string, 0, len(s.apps))
	for _, a := range s.cfg.Applications {
		names = append(names, a.Name)
	}
	s.mu.Lock()
	n := len(s.cache)
	s.mu.Unlock()
	return fmt.Sprintf("auth.Source{token_url: %s, applications: %v, cached tokens: %d}", s.cfg.TokenURL, names, n)
}

// Format prints String for every verb, so that %+v and %#v, which would
// otherwise walk the unexported fields, show no secret or token.
func (s *Source) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
