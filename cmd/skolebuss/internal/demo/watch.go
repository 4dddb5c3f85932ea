package demo

import (
	"context"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// Watch runs a demo vendor against js until ctx ends, printing a line per
// export started and completed with whether its copy matched. It is how the
// daemons, run as separate processes, are watched at work. Each watcher
// reads on an ordered consumer of its own, so several can watch at once.
// vendor "" reads the canonical LMS stream; a vendor's name reads that
// vendor's own stream.
func Watch(ctx context.Context, js jetstream.JetStream, cfg *config.Config, vendor string, out io.Writer, logger *slog.Logger) error {
	names := map[string]string{}
	for _, t := range cfg.Tenants {
		names[t.ID] = t.Name
	}
	pr := newProgress(out, false, 0, names)
	v, err := vendorcopy.New(js, vendorcopy.Config{Vendor: vendor, OnProgress: pr.update, ProgressEvery: 1 << 30, Logger: logger})
	if err != nil {
		return err
	}
	return v.Run(ctx)
}
