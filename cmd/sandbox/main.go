// Command sandbox serves the simulated Flyt Skole upstream: the Visma
// Connect token endpoint and the LMS PIFU export of generated
// municipalities, with rate limits, quotas and injectable faults. Run with
// --help for the flags and the admin calls.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

const usageText = `Usage: sandbox [flags]

Serves the simulated upstream of skolebuss: the token endpoint and the Flyt
Skole LMS export, with generated municipalities, rate limits, quotas and
faults. Without --config it serves the demo: application skolebuss-demo
(secret skolebuss-demo-secret, scope vfsapi:lmsexport) linked to
  aa750693-e3ea-441b-93fe-6a71a8371afa  Fjordvik kommune (tiny)
  0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f  Måneby kommune (small)
  7c9e6679-7425-40de-944b-e07fc1f90ae7  Nordstrand kommune (medium)
and skolebuss-noscope (secret skolebuss-noscope-secret, without the scope)
linked to Fjordvik.

Flags:
%s
Upstream paths:
  POST /connect/token                    client credentials grant (form), tenant_ID
  GET  /api/external/lms/pifu            the PIFU export (Authorization: Bearer)
  GET  /.well-known/jwks.json            the token signing key
  GET  /.well-known/openid-configuration

Admin calls (the sandbox's own, kept apart under /_sandbox/; no auth, JSON):
  GET    /_sandbox/stats                 per application: requests, served, 429s, quota used
  GET    /_sandbox/stats/{client_id}     one application
  GET    /_sandbox/tenants               tenants with their current generation
  GET    /_sandbox/tenants/{id}          one tenant
  POST   /_sandbox/tenants/{id}/advance  next generation of a tenant
  GET    /_sandbox/faults                faults in force (global and per tenant)
  PUT    /_sandbox/faults[/{id}]         set global or tenant faults, e.g.
                                         {"error_rate":0.3,"latency":"200ms","cut_off_after":10000}
  DELETE /_sandbox/faults[/{id}]         clear them

Example:
  sandbox --addr 127.0.0.1:8765 &
  curl -s -d grant_type=client_credentials -d client_id=skolebuss-demo \
       -d client_secret=skolebuss-demo-secret -d scope=vfsapi:lmsexport \
       -d tenant_ID=aa750693-e3ea-441b-93fe-6a71a8371afa http://127.0.0.1:8765/connect/token
  curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8765/api/external/lms/pifu
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(daemon.ExitCode("sandbox", err, os.Stderr))
}

// options are the command's flags.
type options struct {
	addr, cfgPath, logLevel string
	shutdown                time.Duration
}

// newFlags defines every flag of the command; --help prints them with
// usageText.
func newFlags(stderr io.Writer) (*flag.FlagSet, *options) {
	var o options
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", sandbox.DefaultAddr, "listen address `host:port`")
	fs.StringVar(&o.cfgPath, "config", "", "sandbox config `file` (YAML; see deploy/sandbox.example.yaml); empty serves the demo")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "how long exports in flight may finish after SIGINT/SIGTERM")
	fs.Usage = func() {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, usageText, b.String())
	}
	return fs, &o
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs, o := newFlags(stderr)
	if err := daemon.ParseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := sandbox.DemoConfig()
	if o.cfgPath != "" {
		var err error
		if cfg, err = sandbox.LoadConfig(o.cfgPath); err != nil {
			return err
		}
	}
	srv, err := sandbox.New(cfg, logger)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("sandbox listening", "addr", ln.Addr().String(), "config", o.cfgPath, "tenants", len(cfg.Tenants), "applications", len(cfg.Applications))

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", o.shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdown)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		logger.Warn("exports still running at the deadline; closing them", "err", err)
		hs.Close()
	}
	<-errc // Serve returned ErrServerClosed
	return nil
}
