package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
)

// A fetcher killed in the middle of a download leaves the chunks it had
// written in the object store's stream with no object naming them (the
// object's metadata is written last), and the exports store keeps them for
// good. SweepOrphanChunks finds such chunks and purges them.
//
// The object store's layout (nats.go jetstream): chunks on
// $O.<bucket>.C.<nuid>, an object's metadata on $O.<bucket>.M.<name>, whose
// JSON names the nuid of its chunks.
const (
	exportsStream = "OBJ_" + bus.ObjectExports
	chunkPrefix   = "$O." + bus.ObjectExports + ".C."
	metaPrefix    = "$O." + bus.ObjectExports + ".M."

	// DefaultOrphanAge is how long chunks must have gone without a newer one
	// before they count as an abandoned download: far longer than a stalled
	// body may last (the client's idle timeout is minutes).
	DefaultOrphanAge = time.Hour
	// sweepEvery is how often a running fetcher sweeps.
	sweepEvery = time.Hour
)

// Swept is what one sweep found and purged.
type Swept struct {
	Uploads int    // abandoned downloads purged
	Chunks  uint64 // their chunk messages
}

// SweepOrphanChunks purges, in the exports object store, the chunks of every
// download that no object names and that has written nothing for minAge. A
// download in progress writes a chunk at least every few seconds, and its
// metadata follows its last chunk, so it is never taken for an orphan.
func SweepOrphanChunks(ctx context.Context, js jetstream.JetStream, minAge time.Duration) (Swept, error) {
	var out Swept
	stream, err := js.Stream(ctx, exportsStream)
	if err != nil {
		return out, fmt.Errorf("sweep: stream %s: %w", exportsStream, err)
	}
	chunks, err := subjects(ctx, stream, chunkPrefix+">")
	if err != nil || len(chunks) == 0 {
		return out, err
	}
	metas, err := subjects(ctx, stream, metaPrefix+">")
	if err != nil {
		return out, err
	}
	live := make(map[string]bool, len(metas))
	for subj := range metas {
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("sweep: read %s: %w", subj, err)
		}
		var meta struct {
			NUID string `json:"nuid"`
		}
		if err := json.Unmarshal(m.Data, &meta); err != nil {
			return out, fmt.Errorf("sweep: object metadata %s: %w", subj, err)
		}
		live[meta.NUID] = true
	}
	for subj, n := range chunks {
		if live[strings.TrimPrefix(subj, chunkPrefix)] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("sweep: read %s: %w", subj, err)
		}
		if time.Since(last.Time) < minAge {
			continue // a download still writing, or just ended
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return out, fmt.Errorf("sweep: purge %s: %w", subj, err)
		}
		out.Uploads++
		out.Chunks += n
	}
	return out, nil
}

// subjects lists the stream's subjects matching filter with their message
// counts.
func subjects(ctx context.Context, stream jetstream.Stream, filter string) (map[string]uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("sweep: subjects %s: %w", filter, err)
	}
	return info.State.Subjects, nil
}

// sweepLoop sweeps at start and then every sweepEvery until ctx ends. A
// failed sweep is logged and tried again next time: it loses nothing.
func (f *Fetcher) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		got, err := SweepOrphanChunks(ctx, f.js, f.cfg.OrphanAge)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			f.logger.Warn("sweeping abandoned downloads failed", "err", err)
		case got.Uploads > 0:
			f.logger.Info("abandoned downloads purged from the exports store", "uploads", got.Uploads, "chunks", got.Chunks)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
