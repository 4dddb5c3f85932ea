package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/worker"
)

// StageConfig is what the publisher process of a measurement runs.
type StageConfig struct {
	// NATSURL is the server of the measurement. Required.
	NATSURL string
	// ExportID is the export after which the stage stops. Required.
	ExportID string
	// SpoolDir is the diff's directory for temporary files. Default: the
	// system's temporary directory.
	SpoolDir string
	// Window is the publisher's window of unacknowledged events. Default
	// publisher.DefaultWindow.
	Window int
	// AckWait of the publisher's consumer. Default 60s.
	AckWait time.Duration
}

// StageOutcome is what the publisher process did with its export, as
// RunStage returns it and the bench command's child prints it (JSON, one
// line).
type StageOutcome struct {
	ExportID string `json:"export_id"`
	Events   int    `json:"events"`
	// Took is the whole export in the process; Diffed the part until its
	// changes were known (parse, hash, spool), before publishing.
	Took   time.Duration `json:"took_ns"`
	Diffed time.Duration `json:"diffed_ns"`
	// PeakRSS is the process's own peak RSS (VmHWM) at the end, in bytes;
	// 0 where the platform does not say.
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// RunStage runs the publisher stage as its daemon does (the publisher's
// worker consumer on the EXPORTS stream, one export at a time) against
// cfg.NATSURL, until the export cfg.ExportID has been processed and its
// message acknowledged, then stops the stage and returns what the export
// did. Other exports it meets on the way are processed as the daemon
// would. A permanent failure of cfg.ExportID (it was dead-lettered) is
// returned as the error. Cancelling ctx stops the stage and returns an
// error wrapping ctx's.
func RunStage(ctx context.Context, cfg StageConfig, logger *slog.Logger) (StageOutcome, error) {
	if cfg.NATSURL == "" || cfg.ExportID == "" {
		return StageOutcome{}, errors.New("bench stage: NATSURL and ExportID are required")
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	spool := cfg.SpoolDir
	if spool == "" {
		spool = os.TempDir()
	}
	pcfg := pipelineConfig("", cfg.NATSURL, spool)
	b, err := bus.Open(ctx, app.BusConfig(pcfg, "skolebuss-bench-publisher"), logger)
	if err != nil {
		return StageOutcome{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()
	stage, err := app.NewPublisher(app.Runtime{Config: pcfg, Bus: b, Logger: logger},
		app.StageOptions{AckWait: cfg.AckWait, Window: cfg.Window})
	if err != nil {
		return StageOutcome{}, err
	}
	pub, wcfg := stage.Publisher, stage.Worker

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		once   sync.Once
		out    StageOutcome
		result error
	)
	handle := func(hctx context.Context, m *message.Message) error {
		fe, err := messages.DecodeWatermill[messages.FetchedExport](m)
		if err != nil {
			return err
		}
		o, err := pub.Process(hctx, fe)
		if fe.ExportID == cfg.ExportID && (err == nil || failure.ClassOf(err) == failure.Permanent) {
			once.Do(func() {
				out = StageOutcome{ExportID: fe.ExportID, Events: o.Events, Took: o.Took, Diffed: o.Diffed}
				result = err
				// The worker settles the message once this returns: stop
				// when the consumer has it acknowledged.
				go func() {
					if werr := waitAcked(runCtx, b.JS, wcfg.Stream, wcfg.Consumer); werr != nil {
						logger.Warn("the export's acknowledgement was not seen", "err", werr)
					}
					stop()
				}()
			})
		}
		return err
	}
	if err := worker.Run(runCtx, b.JS, wcfg, handle, logger, nil); err != nil {
		return StageOutcome{}, err
	}
	if ctx.Err() != nil {
		return StageOutcome{}, fmt.Errorf("bench stage: %w", ctx.Err())
	}
	if result != nil {
		return out, fmt.Errorf("export %s: %w", cfg.ExportID, result)
	}
	out.PeakRSS = peakRSSOf("self")
	return out, nil
}

// waitAcked waits until the consumer has no message waiting for its
// acknowledgement, for at most 30 seconds.
func waitAcked(ctx context.Context, js jetstream.JetStream, stream, consumer string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, consumer)
	if err != nil {
		return err
	}
	for {
		info, err := c.Info(ctx)
		if err == nil && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}
