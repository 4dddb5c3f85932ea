package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
)

// daemonFlags are the flags every skolebuss daemon shares: where the config
// is, which NATS to use, how much to log.
type daemonFlags struct {
	configFile, natsURL, natsCreds, logLevel string
	embedded, allowProduction                bool
}

func (d *daemonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.configFile, "config", "", "the skolebuss YAML `FILE` (default: the sandbox demo's configuration)")
	fs.StringVar(&d.natsURL, "nats-url", "", "NATS server or cluster `URL`s, comma-separated (overrides nats.url and $SKOLEBUSS_NATS_URL)")
	fs.StringVar(&d.natsCreds, "nats-creds", "", "NATS credentials `FILE` (overrides nats.credentials_file)")
	fs.BoolVar(&d.embedded, "embedded", false, "run the embedded NATS server in this process (nats.embedded) instead of connecting to one")
	fs.StringVar(&d.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.BoolVar(&d.allowProduction, "allow-production", false, "allow production endpoints (the config must say environment: production too)")
}

// load reads the configuration (file or demo default), applies SKOLEBUSS_*
// variables and the flags, validates it and resolves the secrets.
func (d *daemonFlags) load(getenv func(string) string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(d.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, d.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var cfg *config.Config
	if d.configFile != "" {
		var err error
		if cfg, err = config.Load(d.configFile); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
		}
	} else {
		cfg = config.Default()
		// The demo application's secret is the sandbox's public one.
		if a, ok := cfg.Application(config.DemoApplication); ok {
			a.ClientSecret = config.DemoSecret
		}
	}
	if err := cfg.Apply(getenv); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if d.natsURL != "" {
		cfg.NATS.URL = d.natsURL
	}
	if d.natsCreds != "" {
		cfg.NATS.CredentialsFile = d.natsCreds
	}
	if d.allowProduction {
		cfg.AllowProduction = true
	}
	if d.embedded && cfg.NATS.URL != "" {
		return nil, nil, fmt.Errorf("%w: --embedded runs a server here; it excludes the NATS URL %s", errUsage, cfg.NATS.URL)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.ResolveSecrets(getenv, os.ReadFile); err != nil {
		return nil, nil, err
	}
	return cfg, logger, nil
}

// open connects to NATS (or starts the embedded server with --embedded) and
// provisions the streams and stores.
func (d *daemonFlags) open(ctx context.Context, cfg *config.Config, name string, logger *slog.Logger) (*bus.Bus, error) {
	bc := cfg.Bus()
	bc.Name = name
	if !d.embedded && bc.URL == "" {
		host, port := bc.Embedded.Host, bc.Embedded.Port
		if host == "" {
			host = "127.0.0.1"
		}
		if port <= 0 {
			port = 4222
		}
		bc.URL = "nats://" + net.JoinHostPort(host, strconv.Itoa(port))
	}
	b, err := bus.Open(ctx, bc, logger)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		where := "the embedded server"
		if bc.URL != "" {
			where = redact(bc.URL)
		}
		return nil, fmt.Errorf("nats at %s: %w", where, err)
	}
	return b, nil
}

// redact drops user info from NATS URLs for messages.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "[redacted]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
