package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/skolebuss/skolebuss/cmd/skolebuss/internal/demo"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/daemon"
)

func init() {
	register(command{
		name:    "demo",
		summary: "run the whole pipeline on this machine: embedded JetStream, the sandbox upstream, all stages and the demo LMS vendors",
		run:     runDemo,
	})
}

const demoUsage = `Usage: skolebuss demo [--once] [flags]

Runs the whole pipeline in this process: an embedded NATS JetStream server, the
sandbox upstream with its three demo municipalities (Fjordvik, Måneby,
Nordstrand), the requester, fetcher, publisher and fan-out stages, a copy of
the canonical change events of each municipality, and the two demo LMS vendors
of the demo configuration with different profiles: itslearning-demo (roster
and contact, all three municipalities) and roster-only-demo (the roster only,
Fjordvik and Nordstrand). Each vendor reads only its own stream
(VENDOR_<vendor>), applies it to its own copy and checks that copy against
every export.completed the fan-out sent it (its counts and checksum).

Without --once it runs until Ctrl-C: every tenant is exported at once and then
on its schedule (--interval), while the sandbox moves a generation forward every
--interval (pupils join, leave and change class, names and phones change),
so created/updated/deleted events keep flowing. Progress per tenant is shown
as it goes. Ctrl-C stops it cleanly: consumers stop, work in hand finishes,
telemetry is flushed. Other processes can join while it runs, for example
"skolebuss export --tenant ID" or a second fetcher (NATS on --nats-port).

NATS admits its users only, as a deployment's does: each vendor's user,
vendor-<name>, may read its own stream and nothing else (the demo's own vendor
copies connect as these users), and the pipeline connects as the server's own
user "skolebuss". A vendor's system connects to nats://127.0.0.1:4222 (the
--nats-port) as user vendor-<name>, with the inbox prefix _INBOX_<name>
(nats.go: nats.CustomInboxPrefix), and reads VENDOR_<name> through a consumer
of its own. Its password is SKOLEBUSS_VENDOR_<NAME>_PASSWORD when that is set
in the demo's environment (the name upper-cased, '-' as '_': vendor
itslearning-demo, SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD); otherwise the
demo makes one at each start and writes it, readable by this OS user only, to
<user cache dir>/skolebuss/nats-127.0.0.1-<port>/vendor-<name>.password
(~/.cache on Linux). The pipeline's password is made at each start and written
beside them (skolebuss.password), never printed: skolebuss watch, export, dlq,
replay and the daemons run by the same OS user on this machine read it when
no NATS credentials are given. The files are removed when the demo stops. The
demo prints each vendor's user, inbox prefix, stream and password file as it
starts.

With --once it exports every tenant, advances the sandbox one generation,
exports again, then checks that the canonical copy of each tenant equals the
latest export record for record and that each vendor's copy of each of its
tenants matched its latest export.completed, prints a summary per tenant and
per vendor and tenant, and exits 0 only if all matched (1 otherwise).

Flags:
`

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "export every tenant twice around one sandbox generation, check the canonical and the vendors' copies, print a summary and exit")
	dataDir := fs.String("data-dir", "", "`DIR` for JetStream's files and the spool (default: a temporary directory, removed at exit)")
	sandboxAddr := fs.String("sandbox-addr", config.SandboxAddr, "`HOST:PORT` of the sandbox upstream")
	natsPort := fs.Int("nats-port", 4222, "`PORT` of the embedded NATS server on 127.0.0.1 (-1: any free port)")
	interval := fs.Duration("interval", time.Minute, "export schedule and sandbox generation interval of the continuous run")
	timeout := fs.Duration("timeout", 5*time.Minute, "with --once: how long one round of exports may take")
	logLevel := fs.String("log-level", "warn", "log `level` of the components on stderr: debug, info, warn or error")
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	if err := daemon.ParseFlags(fs, args, daemon.Range{Flag: "nats-port", Min: -1, Max: 65535}); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, *logLevel)
	}
	if *interval < 10*time.Second {
		return fmt.Errorf("%w: --interval %s is shorter than the 10s a schedule allows", errUsage, *interval)
	}
	live, width := false, 0
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*once {
		live = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	opts := demo.Options{
		DataDir: *dataDir, SandboxAddr: *sandboxAddr, NATSPort: *natsPort, Interval: *interval, Timeout: *timeout,
		Out: stdout, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), Live: live, Width: width,
	}
	if *once {
		_, err := demo.Once(ctx, opts)
		return err
	}
	return demo.Run(ctx, opts)
}
