// Package flytapi is the client of the Flyt Skole export API: it fetches one
// tenant's PIFU export as a stream and classifies every way that can fail
// with internal/failure, so the caller knows whether to retry, wait or
// dead-letter.
package flytapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/upstreamhttp"
)

// TokenSource gives the access token for an (application, tenant) and drops
// one the API rejected. *auth.Source implements it.
type TokenSource interface {
	Token(ctx context.Context, key auth.Key) (auth.Token, error)
	Invalidate(key auth.Key, rejected auth.Token)
}

var _ TokenSource = (*auth.Source)(nil)

// Export is one export answer. Body is the PIFU document as a stream: the
// caller reads it and must Close it. A Read that fails returns a classified
// error (Transient "truncated_body", "connection_reset", "body_stalled"; or
// the caller's context error) and never a clean io.EOF for a document cut
// short.
type Export struct {
	Body          io.ReadCloser
	ContentType   string
	APIVersion    string // X-Api-Version, if sent
	Deprecation   string // the Deprecation header, if sent (RFC 9745)
	Sunset        string // the Sunset header, if sent (RFC 8594)
	ContentLength int64  // -1 if unknown
}

// Client fetches exports. It is safe for concurrent use.
type Client struct {
	cfg    Config
	cfgErr error
	tokens TokenSource
	logger *slog.Logger
	tracer trace.Tracer
	http   *http.Client
	url    string
	warned sync.Map // "deprecation|sunset" values already logged
}

// New returns a Client. Call cfg.Validate first: a Client built from an
// invalid Config fails every FetchExport with a Permanent "bad_config"
// error. logger and tp may be nil.
func New(cfg Config, tokens TokenSource, logger *slog.Logger, tp trace.TracerProvider) *Client {
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if tp == nil {
		tp = trace.NewNoopTracerProvider()
	}
	base := cfg.Transport
	if base == nil {
		base = upstreamhttp.NewTransport(cfg.ConnectTimeout, cfg.ResponseHeaderTimeout, 16)
	}
	return &Client{
		cfg:    cfg,
		cfgErr: cfg.Validate(),
		tokens: tokens,
		logger: logger,
		tracer: tp.Tracer("github.com/skolebuss/skolebuss/internal/flytapi"),
		http: &http.Client{Transport: otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " export" }),
		)},
		url: strings.TrimRight(cfg.APIBase, "/") + cfg.ExportPath,
	}
}

// FetchExport requests tenant's export with app's token. On success the
// caller owns Export.Body and must close it. A 401 drops the token and tries
// once more with a new one. Every error is classified (see package failure):
// Permanent "unauthorized", "forbidden", "not_found", "wrong_content_type",
// "http_4xx"; Throttled "http_429"/"http_503" with the Retry-After wait;
// Transient "http_5xx", "timeout", "connection_reset", "unreachable"; token
// errors as package auth classifies them. Cancelling ctx aborts the request
// and any later Read of the body (class Canceled).
func (c *Client) FetchExport(ctx context.Context, app, tenant string) (*Export, error) {
	if c.cfgErr != nil {
		return nil, failure.New(failure.Permanent, failure.ReasonBadConfig, fmt.Errorf("fetch export %s: %w", tenant, c.cfgErr))
	}
	ctx, span := c.tracer.Start(ctx, "flytapi.FetchExport", trace.WithAttributes(
		telemetry.KeyValues(telemetry.Application(app), telemetry.Tenant(tenant))...))
	exp, err := c.fetch(ctx, span, auth.Key{App: app, Tenant: tenant})
	if err != nil {
		err = fmt.Errorf("fetch export %s: %w", tenant, err)
		telemetry.RecordError(span, err)
		span.End()
		return nil, err
	}
	return exp, nil
}

func (c *Client) fetch(ctx context.Context, span trace.Span, key auth.Key) (*Export, error) {
	for attempt := 1; ; attempt++ {
		tok, err := c.tokens.Token(ctx, key)
		if err != nil {
			return nil, err
		}
		reqCtx, cancel := context.WithCancelCause(ctx)
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, c.url, nil)
		if err != nil {
			cancel(nil)
			return nil, failure.New(failure.Permanent, failure.ReasonBadConfig, err)
		}
		tok.SetAuthHeader(req)
		req.Header.Set("Accept", "application/xml")
		req.Header.Set("User-Agent", c.cfg.UserAgent)
		resp, err := c.http.Do(req)
		if err != nil {
			cancel(nil)
			return nil, classifyTransport(ctx, err)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			discard(resp)
			cancel(nil)
			c.tokens.Invalidate(key, tok)
			if attempt == 1 {
				c.logger.Debug("export: token rejected, retrying with a new one", "tenant", key.Tenant)
				span.AddEvent("token rejected; retrying")
				continue
			}
			return nil, failure.Permanentf(failure.ReasonUnauthorized, "the API rejected a freshly issued token (401) twice")
		}
		if resp.StatusCode != http.StatusOK {
			err := c.classifyStatus(resp)
			cancel(nil)
			return nil, err
		}
		ct := resp.Header.Get("Content-Type")
		if !isXML(ct) {
			discard(resp)
			cancel(nil)
			return nil, failure.Permanentf(failure.ReasonWrongContentType, "content type %q, want application/xml or text/xml", clip(ct, 100))
		}
		exp := &Export{
			ContentType:   ct,
			APIVersion:    resp.Header.Get("X-Api-Version"),
			Deprecation:   resp.Header.Get("Deprecation"),
			Sunset:        resp.Header.Get("Sunset"),
			ContentLength: resp.ContentLength,
		}
		c.warnDeprecation(exp, key.Tenant)
		exp.Body = newBody(resp.Body, reqCtx, ctx, cancel, c.cfg.IdleTimeout, resp.ContentLength, span)
		return exp, nil
	}
}

// warnDeprecation logs each distinct Deprecation/Sunset pair once per Client.
func (c *Client) warnDeprecation(e *Export, tenant string) {
	if e.Deprecation == "" && e.Sunset == "" {
		return
	}
	if _, seen := c.warned.LoadOrStore(e.Deprecation+"|"+e.Sunset, true); seen {
		return
	}
	c.logger.Warn("the export API announces its deprecation",
		"deprecation", e.Deprecation, "sunset", e.Sunset, "api_version", e.APIVersion, "tenant", tenant)
}

// discard drains a little of an answer we do not use (so the connection can
// be reused) and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// errStalled is the cancel cause when a body read made no progress for
// Config.IdleTimeout.
var errStalled = errors.New("no body bytes within the idle timeout")

// String describes the Client.
func (c *Client) String() string { return "flytapi.Client{" + c.url + "}" }

// Format prints String for every verb (%+v would walk the unexported fields).
func (c *Client) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }
