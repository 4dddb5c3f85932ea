package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/messages"
)

func init() {
	register(command{
		name:    "dlq",
		summary: "list the dead letters: what failed, where, why, after how many attempts (their sequence is what replay takes)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return dlqCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const dlqHelp = `Usage: skolebuss dlq [--tenant ID] [--stage fetch|publish] [--last N] [--json] [flags]

Lists the messages of the DLQ stream, oldest first: each one's sequence (what
skolebuss replay --seq takes), when it failed, the stage, the tenant, the
reason and class of the failure, the attempts made, the trace id of the job
and the error. --tenant takes a tenant id in either case; a tenant that is
neither in the configuration nor in any dead letter is refused as unknown
(exit 2), and --tenant unknown lists the dead letters of messages that named
no tenant. An export held by the deletion threshold is here with reason
deletion_held. Dead letters carry no secrets and no personal data; --json
prints them whole, one JSON object a line, with "seq".

Connection flags as for skolebuss export.

Flags:
`

// dlqRow is one dead letter as listed.
type dlqRow struct {
	Seq uint64 `json:"seq"`
	messages.DeadLetter
}

func dlqCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss dlq", dlqHelp, stderr)
	tenant := fs.String("tenant", "", "only the dead letters of tenant `ID`")
	stage := fs.String("stage", "", "only the dead letters of `STAGE`: fetch or publish")
	last := fs.Int("last", 50, "list the last `N` (0: all)")
	asJSON := fs.Bool("json", false, "one JSON object a line instead of a table")
	if err := parseOps(fs, args, daemon.Range{Flag: "last", Min: 0, Max: daemon.MaxFlagCount}); err != nil {
		return err
	}
	if *stage != "" && *stage != "fetch" && *stage != "publish" {
		return fmt.Errorf("%w: --stage %q: want fetch or publish", errUsage, *stage)
	}
	if *tenant != "" && *tenant != messages.UnknownTenant {
		var err error
		if *tenant, err = tenantFlag(*tenant); err != nil {
			return err
		}
	}
	filter, err := messages.DLQFilter(*stage, *tenant)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, nc, js, err := o.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer nc.Close()

	rows, err := readDeadLetters(ctx, js, filter, *last)
	if err != nil {
		return explainBus(err)
	}
	if len(rows) == 0 && *tenant != "" && *tenant != messages.UnknownTenant {
		// No dead letter of a tenant the configuration does not list
		// either: most likely a mistyped id, which must not pass for a
		// tenant without failures. (A tenant no longer configured is
		// listed while it has dead letters.)
		if _, ok := cfg.Tenant(*tenant); !ok {
			return fmt.Errorf("%w; the DLQ holds no dead letter of it either", unknownTenant(cfg, *tenant))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "seq\tfailed at (UTC)\tstage\ttenant\treason\tclass\tattempts\ttrace id\terror")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Seq, r.FailedAt.UTC().Format(time.DateTime), r.Stage,
			r.Tenant, r.Reason, r.Class, r.Attempts, orDash(r.TraceID), oneLine(r.Error, 120))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d dead letter(s); skolebuss replay --seq N sends one through again\n", len(rows))
	return nil
}

// readDeadLetters reads the DLQ stream's messages on filter, oldest first,
// keeping the last n of them (all with n = 0). A message that is not a dead
// letter is listed with what is wrong with it, not skipped.
func readDeadLetters(ctx context.Context, js jetstream.JetStream, filter string, n int) ([]dlqRow, error) {
	stream, err := js.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", bus.StreamDLQ, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", bus.StreamDLQ, err)
	}
	var rows []dlqRow
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", bus.StreamDLQ, err)
		}
		got := 0
		var pending uint64
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", bus.StreamDLQ, err)
			}
			pending = meta.NumPending
			row := dlqRow{Seq: meta.Sequence.Stream}
			dl, err := messages.Decode[messages.DeadLetter](&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				row.DeadLetter = messages.DeadLetter{Reason: "not_a_dead_letter", Error: err.Error(), FailedAt: meta.Timestamp}
				row.Stage, row.Tenant, _ = messages.ParseDLQSubject(m.Subject())
			} else {
				row.DeadLetter = dl
			}
			rows = append(rows, row)
			if n > 0 && len(rows) > n {
				rows = rows[1:]
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read %s: %w", bus.StreamDLQ, err)
		}
		if got == 0 || pending == 0 {
			return rows, nil
		}
	}
}

// oneLine folds s onto one line of at most max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
