package publisher

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/skolebuss/skolebuss/internal/diff"
)

// Defaults of Config.
const (
	DefaultWindow      = 8192
	DefaultAckTimeout  = 30 * time.Second
	DefaultStoreTimout = 5 * time.Minute
)

// Config configures a Publisher. The zero value takes the defaults.
type Config struct {
	// Diff tunes the diff: SpoolDir, DeleteThreshold, MinEntityRecords.
	// Force is ignored here: only a FetchedExport with Force set forces.
	Diff diff.Config
	// Window is how many change events may wait for their JetStream
	// acknowledgement at once. Larger windows keep the server busy while the
	// publisher encodes; each pending event costs its encoded size.
	// Default 8192.
	Window int
	// AckTimeout is how long one event may wait for its acknowledgement
	// before the export fails (transiently) and is redone. Default 30s.
	AckTimeout time.Duration
	// Logger receives one line per export (ids and counts only). Default:
	// discard.
	Logger *slog.Logger
	// TracerProvider makes the stage's spans when Run is given none.
	// Default: no-op.
	TracerProvider trace.TracerProvider
	// Meter makes the publisher's metrics (metrics.go: events, exports by
	// outcome, duration, last applied per tenant). Default: no-op.
	Meter metric.MeterProvider
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	if c.Meter == nil {
		c.Meter = metricnoop.NewMeterProvider()
	}
	c.Diff.Logger = c.Logger
	c.Diff.Force = false
	return c
}

// Validate reports the first field out of range, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Window < 1 || c.Window > 1<<20 {
		errs = append(errs, fmt.Errorf("publisher: window %d is not in 1..%d", c.Window, 1<<20))
	}
	if c.AckTimeout < 0 {
		errs = append(errs, fmt.Errorf("publisher: ack timeout %s is negative", c.AckTimeout))
	}
	if err := c.Diff.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("publisher: %w", err))
	}
	return errors.Join(errs...)
}
