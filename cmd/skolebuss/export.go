package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

func init() {
	register(command{
		name:    "export",
		summary: "request an export of one tenant now (an export job for the fetchers)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return exportCmd(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const exportHelp = `Usage: skolebuss export --tenant ID [flags]

Puts an export job for one tenant on jobs.export.<tenant>, for a running
fetcher to take. The job id is demand-<tenant>-<UTC minute> unless --id gives
one, so asking twice within the same minute makes one job. The tenant must be
in the configuration. Prints the job id and the trace id the job starts.

With --wait it then follows the job: the export's start and its application
(export.completed, with the counts and the state's checksum), or the dead
letter a stage made of it (exit 1, with the sequence for skolebuss replay).

` + opsConnectionHelp

func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs, o := newOpsCommand("skolebuss export", exportHelp, stderr)
	tenant := fs.String("tenant", "", "the tenant `ID` to export; required")
	id := fs.String("id", "", "the job `ID` (letters, digits, '-', '_'); default demand-<tenant>-<minute>")
	wait := fs.Bool("wait", false, "wait until the export is applied or dead-lettered, and say which (exit 1 if dead-lettered)")
	waitTimeout := fs.Duration("wait-timeout", 30*time.Minute, "with --wait, give up waiting after this long")
	if err := parseOps(fs, args); err != nil {
		return err
	}
	if *tenant == "" {
		return fmt.Errorf("%w: --tenant is required", errUsage)
	}
	cfg, err := o.load(getenv)
	if err != nil {
		return err
	}
	// Refuse a bad or unknown tenant before touching the network.
	if *tenant, err = tenantFlag(*tenant); err != nil {
		return err
	}
	if _, ok := cfg.Tenant(*tenant); !ok {
		return unknownTenant(cfg, *tenant)
	}
	if *id != "" {
		if err := messages.ValidateToken("job id", *id); err != nil {
			return fmt.Errorf("%w: --id: %v", errUsage, err)
		}
	}
	nc, js, err := o.connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer nc.Close()
	// The job starts its trace here; with an OTLP endpoint configured the
	// span is exported beside the stages' spans.
	tel, err := telemetry.New(ctx, app.TelemetryConfig(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	r, err := requester.New(js, app.RequesterConfig(cfg), slog.New(slog.DiscardHandler), tel.TracerProvider())
	if err != nil {
		return err
	}
	res, err := r.RequestNow(ctx, *tenant, *id)
	if err != nil {
		return explainBus(err)
	}
	// Where a waiter reads from: a minute before the request (clocks drift),
	// or, for a job requested earlier, as far back as a duplicate can be.
	since := res.Job.RequestedAt.Add(-time.Minute)
	if res.Duplicate {
		fmt.Fprintf(stdout, "already requested: job %s for tenant %s is in the queue (seq %d)\n", res.Job.JobID, *tenant, res.Seq)
		since = res.Job.RequestedAt.Add(-2 * time.Hour) // beyond the JOBS stream's duplicate window (an hour)
	} else {
		fmt.Fprintf(stdout, "requested: job %s for tenant %s (seq %d, trace %s)\n", res.Job.JobID, *tenant, res.Seq, res.TraceID)
	}
	if !*wait {
		return nil
	}
	return waitExport(ctx, js, *tenant, res.Job.JobID, since, *waitTimeout, stdout)
}

// opsConnectionHelp ends the help of an operator command that connects to
// the pipeline: where its configuration and server come from, then its flags.
const opsConnectionHelp = `The configuration is --config FILE (default: the sandbox demo's), then
SKOLEBUSS_* variables, then the flags. It connects to --nats-url, else the
config's nats.url, else the embedded server's address (nats://127.0.0.1:4222
by default), where the pipeline runs.

Flags:
`

// opsFlags are the connection flags of the operator commands: the
// daemons' --config, --nats-url, --nats-creds and --nats-user. The operator
// commands do not talk to the upstream, so no application secret is read;
// the NATS password or token is.
type opsFlags struct{ daemon.Flags }

func (o *opsFlags) register(fs *flag.FlagSet) {
	o.NATSOnly = true
	o.RegisterClient(fs)
}

// newOpsCommand is the flag set of operator command name (its errors and
// help to stderr, the help text first, then the flags) with the connection
// flags registered; the command adds its own flags, then calls parseOps.
func newOpsCommand(name, help string, stderr io.Writer) (*flag.FlagSet, *opsFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := new(opsFlags)
	o.register(fs)
	fs.Usage = func() { fmt.Fprint(stderr, help); fs.PrintDefaults() }
	return fs, o
}

func parseOps(fs *flag.FlagSet, args []string, ranges ...daemon.Range) error {
	return daemon.ParseFlags(fs, args, ranges...)
}

// load reads the configuration as the daemons do.
func (o *opsFlags) load(getenv func(string) string) (*config.Config, error) {
	cfg, _, err := o.Load(getenv, io.Discard)
	return cfg, err
}

// open is load, then connect.
func (o *opsFlags) open(ctx context.Context, getenv func(string) string) (*config.Config, *nats.Conn, jetstream.JetStream, error) {
	cfg, err := o.load(getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	nc, js, err := o.connect(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, nc, js, nil
}

// connect dials the pipeline's NATS server. It does not provision: an
// operator command changes no stream.
func (o *opsFlags) connect(ctx context.Context, cfg *config.Config) (*nats.Conn, jetstream.JetStream, error) {
	return daemon.Dial(ctx, cfg, "skolebuss-cli")
}

// explainBus adds a hint when no stream took a publish.
func explainBus(err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w\n(no stream answered: run skolebuss provision, or start the pipeline on its embedded server once, so that its streams exist)", err)
	}
	return err
}

// tenantFlag is a --tenant value in its canonical form: a UUID in either
// case, lowered (messages.NormalizeTenant); anything else is a usage error.
func tenantFlag(s string) (string, error) {
	t, err := messages.NormalizeTenant(s)
	if err != nil {
		return s, fmt.Errorf("%w: --tenant: %v", errUsage, err)
	}
	return t, nil
}

// unknownTenant is the usage error of a --tenant the configuration does not
// list, naming those it does.
func unknownTenant(cfg *config.Config, tenant string) error {
	return notInConfig(cfg, "--tenant "+tenant, requester.ErrUnknownTenant, "known", tenantIDs(cfg))
}

// notInConfig is the usage error of a flag value (what: "--flag value") the
// configuration refuses for reason why, naming the values it would take
// (listed as "(which: a, b)", or "none").
func notInConfig(cfg *config.Config, what string, why error, which string, values []string) error {
	return fmt.Errorf("%w: %s: %v in %s (%s: %s)", errUsage, what, why, configName(cfg), which, listOrNone(values))
}

// listOrNone is s comma-separated, or "none".
func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func tenantIDs(cfg *config.Config) []string {
	ids := make([]string, 0, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		ids = append(ids, t.ID)
	}
	return ids
}

func configName(cfg *config.Config) string {
	if cfg.File() == "" {
		return "the demo configuration"
	}
	return cfg.File()
}
