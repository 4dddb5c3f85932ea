package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/requester"
)

func init() {
	register(command{
		name:    "replay",
		summary: "send a dead-lettered job or fetched export through the pipeline again",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return replayCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const replayHelp = `Usage: skolebuss replay --seq N [--force] [flags]

Reads message N of the DLQ stream (the sequence an operator sees in the
listing of skolebuss dlq or an alert) and sends its message through the pipeline
again under the id replay-N:
  a failed export job (stage fetch)       as a new job on jobs.export.<tenant>
  a failed fetched export (stage publish) again on exports.fetched.<tenant>,
                                           pointing at the same stored export
Replaying one dead letter twice within an hour stores it once. The dead
letter stays in the DLQ stream.

--force applies the export even if it would delete more than the publisher's
deletion threshold (publisher.delete_threshold) of the tenant's records: use it
after checking that a held export's deletions are real.

Connection flags as for skolebuss export.

Flags:
`

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss replay", replayHelp, stderr)
	seqText := fs.String("seq", "", "the dead letter's sequence `N` in the DLQ stream; required")
	force := fs.Bool("force", false, "apply the export past the deletion threshold")
	if err := parseOps(fs, args); err != nil {
		return err
	}
	if *seqText == "" {
		return fmt.Errorf("%w: --seq is required", errUsage)
	}
	seq, err := strconv.ParseUint(*seqText, 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("%w: --seq %q: want a sequence number from 1", errUsage, *seqText)
	}
	cfg, nc, js, err := o.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer nc.Close()
	r, err := requester.New(js, app.RequesterConfig(cfg), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	got, err := r.Replay(ctx, seq, *force)
	if errors.Is(err, requester.ErrNoDeadLetter) || errors.Is(err, requester.ErrNotReplayable) {
		return err
	}
	if err != nil {
		return explainBus(err)
	}
	dl := got.DeadLetter
	fmt.Fprintf(stdout, "dead letter %d: stage %s, tenant %s, %s after %d attempt(s): %s\n",
		seq, dl.Stage, dl.Tenant, dl.Reason, dl.Attempts, dl.Error)
	forced := ""
	if got.Force {
		forced = ", forced past the deletion threshold"
	}
	if got.Duplicate {
		fmt.Fprintf(stdout, "already replayed as %s %s on %s%s\n", got.Kind, got.ID, got.Subject, forced)
		return nil
	}
	fmt.Fprintf(stdout, "replayed as %s %s on %s (seq %d)%s\n", got.Kind, got.ID, got.Subject, got.Seq, forced)
	return nil
}
