package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// The one tenant and application of the bench's sandbox. The credentials
// are the sandbox's, public on purpose: it is a fake upstream.
const (
	Tenant       = "5b0c1e8e-6a43-4d0f-9b7e-0d4f3a2c1b9e"
	TenantName   = "Storby kommune"
	Application  = "skolebuss-bench"
	clientSecret = "skolebuss-bench-secret"
	tenantSeed   = 11
)

// upstream is the sandbox served on a loopback port, and the token source
// of the bench's application.
type upstream struct {
	sb  *sandbox.Server
	srv *http.Server
	url string
}

// sandboxConfig is one tenant of size, linked to one application without
// rate limit or quota (the bench measures the pipeline, not the limits).
func sandboxConfig(size string) sandbox.Config {
	seed := uint64(tenantSeed)
	return sandbox.Config{
		Applications: []sandbox.Application{{ClientID: Application, ClientSecret: clientSecret,
			Scopes: []string{sandbox.ScopeLMSExport}, Tenants: []string{Tenant}}},
		Tenants: []sandbox.Tenant{{ID: Tenant, Name: TenantName, Size: size, Seed: &seed}},
	}.WithDefaults()
}

// pipelineConfig is the configuration the bench's stages are built from:
// the demo's, with the bench's application (no rate limit, no quota) and
// tenant, the sandbox at upstreamURL, NATS at natsURL and the publisher's
// spool in spool ("" keeps the defaults).
func pipelineConfig(upstreamURL, natsURL, spool string) *config.Config {
	cfg := config.Default()
	cfg.Upstream.TokenURL = upstreamURL + sandbox.PathToken
	cfg.Upstream.APIBase = upstreamURL
	cfg.Applications = []config.Application{{Name: Application, ClientID: Application, ClientSecret: clientSecret,
		Scopes: []string{sandbox.ScopeLMSExport}}}
	cfg.Tenants = []config.Tenant{{ID: Tenant, Name: TenantName, Application: Application}}
	cfg.NATS.URL = natsURL
	if spool != "" {
		cfg.Publisher.SpoolDir = spool
	}
	return cfg
}

func startUpstream(size string, logger *slog.Logger) (*upstream, error) {
	sb, err := sandbox.New(sandboxConfig(size), logger)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = sb.Close()
		return nil, fmt.Errorf("sandbox: listen: %w", err)
	}
	u := &upstream{sb: sb, srv: &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second},
		url: "http://" + ln.Addr().String()}
	go func() {
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("sandbox stopped serving", "err", err)
		}
	}()
	return u, nil
}

func (u *upstream) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.srv.Shutdown(ctx)
	_ = u.sb.Close()
}

// fetch runs the fetch stage's handler for one job of the tenant: token,
// export streamed from the sandbox into the object store, FetchedExport
// published on exports.fetched.<tenant>. It returns the FetchedExport as
// stored, with the time the server stored it.
func (u *upstream) fetch(ctx context.Context, b *bus.Bus, jobID string, logger *slog.Logger) (messages.FetchedExport, time.Time, error) {
	cfg := pipelineConfig(u.url, "", "")
	stage, err := app.NewFetcher(app.Runtime{Config: cfg, Bus: b, Logger: logger}, app.StageOptions{})
	if err != nil {
		return messages.FetchedExport{}, time.Time{}, err
	}
	defer stage.Close()
	f, err := stage.Handler()
	if err != nil {
		return messages.FetchedExport{}, time.Time{}, err
	}
	job := messages.ExportJob{JobID: jobID, Tenant: Tenant, Application: Application, Reason: messages.ReasonDemand,
		RequestedAt: time.Now().UTC()}
	_, wm, err := messages.EncodeWatermill(job)
	if err != nil {
		return messages.FetchedExport{}, time.Time{}, err
	}
	if err := f.Handle(ctx, wm); err != nil {
		return messages.FetchedExport{}, time.Time{}, fmt.Errorf("fetch job %s: %w", jobID, err)
	}
	subject, err := messages.FetchedSubject(Tenant)
	if err != nil {
		return messages.FetchedExport{}, time.Time{}, err
	}
	m, at, err := lastMsg(ctx, b.JS, bus.StreamExports, subject)
	if err != nil {
		return messages.FetchedExport{}, at, fmt.Errorf("fetched export of job %s: %w", jobID, err)
	}
	fe, err := messages.Decode[messages.FetchedExport](m)
	if err != nil {
		return fe, at, fmt.Errorf("fetched export of job %s: %w", jobID, err)
	}
	if fe.JobID != jobID {
		return fe, at, fmt.Errorf("the last fetched export is of job %s, not %s", fe.JobID, jobID)
	}
	return fe, at, nil
}
