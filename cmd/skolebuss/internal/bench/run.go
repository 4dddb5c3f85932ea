package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/rawpublish"
)

// rawStream captures the raw publish measurement, apart from the pipeline's
// streams.
const (
	rawStream  = "BENCH_RAW"
	rawSubject = "bench.raw.events"
)

// exported is one export through a publisher process.
type exported struct {
	fe        messages.FetchedExport
	fetch     time.Duration // the fetch stage's handler, upstream to FetchedExport
	took      time.Duration // FetchedExport stored to export.completed stored
	completed messages.Boundary
	outcome   StageOutcome // zero if the process printed none
	rss       int64
}

// measure is one run on a fresh embedded server in DataDir/run-<i>.
func measure(ctx context.Context, cfg Config, up *upstream, i int) (Figures, error) {
	log := cfg.Logger.With("run", i)
	dir := filepath.Join(cfg.DataDir, fmt.Sprintf("run-%d", i))
	if err := os.RemoveAll(dir); err != nil {
		return Figures{}, err
	}
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return Figures{}, err
	}
	defer os.RemoveAll(dir)
	b, err := bus.Open(ctx, bus.Config{Name: "skolebuss-bench",
		Embedded: bus.EmbeddedConfig{DataDir: filepath.Join(dir, "nats"), Port: -1}}, quieter(cfg.Logger))
	if err != nil {
		return Figures{}, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	}()

	var f Figures
	// The first export: every record is a created event.
	first, err := exportThrough(ctx, cfg, b, up, spool, fmt.Sprintf("bench-%d-first", i))
	if err != nil {
		return f, fmt.Errorf("first export: %w", err)
	}
	f.ExportBytes, f.Fetch = first.fe.Size, first.fetch
	f.Events = changes(first.completed)
	f.First, f.FirstDiffed = first.took, first.outcome.Diffed
	f.EventRate = float64(f.Events) / first.took.Seconds()
	f.PeakRSSFirst = first.rss
	log.Info("first export published", "bytes", f.ExportBytes, "fetch", f.Fetch.Round(time.Millisecond), "events", f.Events,
		"took", f.First.Round(time.Millisecond), "events_per_s", int(f.EventRate), "peak_rss_mib", first.rss>>20)

	// The raw rate of as many messages of the events' average stored size,
	// on the same server, with the publisher's window.
	info, err := streamInfo(ctx, b.JS, bus.StreamLMS)
	if err != nil {
		return f, err
	}
	if want := uint64(f.Events) + 2; info.State.Msgs != want {
		return f, fmt.Errorf("the LMS stream holds %d messages; export.completed counts %d events (+2 boundaries)", info.State.Msgs, f.Events)
	}
	f.EventBytes = int(info.State.Bytes / info.State.Msgs)
	if f.RawRate, err = rawRate(ctx, b, info.Config, f.EventBytes, f.Events); err != nil {
		return f, err
	}
	f.RateRatio = f.EventRate / f.RawRate
	log.Info("raw publish measured", "messages", f.Events, "bytes", f.EventBytes, "msgs_per_s", int(f.RawRate))

	// The first export fanned out to new vendors, each against a raw rate
	// measured beside it.
	for _, n := range cfg.FanoutVendors {
		ff, err := measureFanout(ctx, b, n, info.Config, fmt.Sprint(i))
		if err != nil {
			return f, fmt.Errorf("fan-out to %d vendors: %w", n, err)
		}
		f.Fanout = append(f.Fanout, ff)
		log.Info("fan-out measured", "vendors", n, "events", ff.Events, "took", ff.Took.Round(time.Millisecond),
			"events_per_s", int(ff.EventRate), "raw_msgs_per_s", int(ff.RawRate), "ratio", fmt.Sprintf("%.2f", ff.RateRatio))
	}

	// The same bytes again under a new export id and object: no changes.
	again, err := exportThrough(ctx, cfg, b, up, spool, fmt.Sprintf("bench-%d-again", i))
	if err != nil {
		return f, fmt.Errorf("unchanged re-export: %w", err)
	}
	if again.fe.SHA256 != first.fe.SHA256 {
		return f, fmt.Errorf("the re-export differs from the first export (sha256 %s, then %s)", first.fe.SHA256, again.fe.SHA256)
	}
	if n := changes(again.completed); n != 0 {
		return f, fmt.Errorf("the unchanged re-export published %d change events", n)
	}
	f.Reexport, f.PeakRSSReexport = again.took, again.rss
	f.PeakRSS = max(f.PeakRSSFirst, f.PeakRSSReexport)
	log.Info("unchanged re-export processed", "took", f.Reexport.Round(time.Millisecond), "peak_rss_mib", again.rss>>20)

	// Parsing the same export alone, from the same object store.
	if f.Records, f.Parse, err = parse(ctx, b.Stores.Exports, again.fe.Object); err != nil {
		return f, err
	}
	f.ReexportRatio = f.Reexport.Seconds() / f.Parse.Seconds()
	log.Info("export parsed", "records", f.Records, "took", f.Parse.Round(time.Millisecond))
	return f, nil
}

// exportThrough starts a publisher process, fetches an export with job id
// id (which the fetch stage makes its export id), waits for the export's
// export.completed and for the process to end.
func exportThrough(ctx context.Context, cfg Config, b *bus.Bus, up *upstream, spool, id string) (exported, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := waitNoPull(ctx, b.JS); err != nil {
		return exported{}, err
	}
	s, err := startStage(cfg.Publisher, b.Server.ClientURL(), id, spool)
	if err != nil {
		return exported{}, err
	}
	defer s.kill()
	if err := s.waitReady(ctx, b.JS); err != nil {
		return exported{}, err
	}
	var e exported
	start := time.Now()
	fe, storedAt, err := up.fetch(ctx, b, id, quieter(cfg.Logger))
	if err != nil {
		return e, err
	}
	e.fe, e.fetch = fe, time.Since(start)
	completed, doneAt, err := s.waitCompleted(ctx, b.JS, id)
	if err != nil {
		return e, err
	}
	e.completed, e.took = completed, doneAt.Sub(storedAt)
	if err := s.finish(ctx, b.JS); err != nil {
		return e, err
	}
	e.outcome, _ = s.outcome()
	e.rss = s.peakRSS()
	return e, nil
}

// waitNoPull waits (up to 5 seconds) until no pull request of an earlier
// publisher process is left on the consumer, so that the next process's
// readiness is its own. They expire within a second.
func waitNoPull(ctx context.Context, js jetstream.JetStream) error {
	wc := publisher.WorkerConfig()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, wc.Stream, wc.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumWaiting == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return errors.New("the previous publisher's pull requests did not expire")
}

// changes is the number of change events an export.completed counts.
func changes(b messages.Boundary) int {
	n := 0
	for _, c := range b.Counts {
		n += c.Created + c.Updated + c.Deleted
	}
	return n
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return info, nil
}

// rawRate measures count asynchronous publishes of size bytes with unique
// Nats-Msg-Id into a stream configured like lms (storage, duplicate window),
// with the publisher's window of pending acknowledgements.
func rawRate(ctx context.Context, b *bus.Bus, lms jetstream.StreamConfig, size, count int) (float64, error) {
	if _, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{rawSubject},
		Storage: lms.Storage, Duplicates: lms.Duplicates, Replicas: lms.Replicas}); err != nil {
		return 0, fmt.Errorf("raw stream: %w", err)
	}
	js, err := jetstream.New(b.Conn, jetstream.WithPublishAsyncMaxPending(publisher.DefaultWindow))
	if err != nil {
		return 0, err
	}
	rate, err := rawpublish.Measure(ctx, js, rawSubject, size, count, rawpublish.WithMsgID())
	if err != nil {
		return 0, err
	}
	return rate, nil
}

// parse reads the stored export with pifu.Decoder and counts its records.
func parse(ctx context.Context, store jetstream.ObjectStore, name string) (int, time.Duration, error) {
	// Without a deadline of its own, an object's read ends at the
	// JetStream context's default timeout (see publisher.ObjectReadTimeout).
	ctx, cancel := context.WithTimeout(ctx, publisher.ObjectReadTimeout)
	defer cancel()
	start := time.Now()
	obj, err := store.Get(ctx, name)
	if err != nil {
		return 0, 0, fmt.Errorf("export %s: %w", name, err)
	}
	defer obj.Close()
	d := pifu.NewDecoder(obj)
	n := 0
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, 0, fmt.Errorf("parse export %s: %w", name, err)
		}
		n++
	}
	return n, time.Since(start), nil
}
