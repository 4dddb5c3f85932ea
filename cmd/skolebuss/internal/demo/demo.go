// Package demo runs the whole skolebuss pipeline in one process for
// `skolebuss demo`: the embedded NATS JetStream server, the sandbox upstream
// with its demo tenants, the requester, fetcher, publisher and fan-out
// stages, a demo copy of the canonical events of each tenant, and one demo
// LMS vendor per configured vendor, each applying its own stream (its
// tenants only, cut to its profile) to its own copy.
//
// Run keeps it all going until ctx ends, printing progress per tenant; Once
// exports every tenant, advances the sandbox one generation, exports again,
// and checks that the canonical copy of each tenant equals the latest export
// and that each vendor's copy of each of its tenants matches the counts and
// checksum of its export.completed.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// Options configure a demo run.
type Options struct {
	// DataDir holds JetStream's files and the publisher's spool. Empty: a
	// temporary directory removed at the end.
	DataDir string
	// SandboxAddr is where the sandbox upstream listens. Default 127.0.0.1:8765.
	SandboxAddr string
	// NATSHost and NATSPort are where the embedded server listens, so the
	// daemons and `skolebuss export` can join from other processes. Default
	// 127.0.0.1:4222; port -1 picks a free one.
	NATSHost string
	NATSPort int
	// Interval is each tenant's export schedule and the sandbox's generation
	// interval in the continuous run. Default 1 minute.
	Interval time.Duration
	// Timeout bounds each round of Once. Default 5 minutes.
	Timeout time.Duration
	// Out receives the progress and the summary; Log the components' logs.
	Out io.Writer
	Log *slog.Logger
	// Live redraws a status table in place (a terminal) of Width columns;
	// otherwise progress is printed as lines.
	Live  bool
	Width int
	// CredentialsDir is where the embedded server writes the passwords it
	// makes (the pipeline's own, and each vendor's whose
	// SKOLEBUSS_VENDOR_<NAME>_PASSWORD is not set). Default: the server's
	// default, bus.EmbeddedCredentialsDir, where the operator commands look.
	CredentialsDir string
	// Getenv reads the vendors' password variables. Default os.Getenv.
	Getenv func(string) string
}

func (o *Options) setDefaults() {
	if o.SandboxAddr == "" {
		o.SandboxAddr = config.SandboxAddr
	}
	if o.NATSHost == "" {
		o.NATSHost = "127.0.0.1"
	}
	if o.NATSPort == 0 {
		o.NATSPort = 4222
	}
	if o.Interval == 0 {
		o.Interval = time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// pipeline is everything one demo run starts; close stops it in order.
type pipeline struct {
	opts     Options
	cfg      *config.Config
	sandbox  *sandbox.Server
	http     *http.Server
	bus      *bus.Bus
	tel      *telemetry.Telemetry
	req      *requester.Requester
	vendor   *vendorcopy.Vendor // the canonical events' copy
	vendors  []vendorCopy       // one per configured vendor
	progress *progress
	names    map[string]string // tenant id -> name

	stages   *errgroup.Group
	stop     context.CancelFunc
	cleanups []func()
}

// vendorCopy is a configured vendor's demo copy, built from its own stream,
// which it reads through a connection of its own as the vendor's NATS user.
type vendorCopy struct {
	name    string
	profile string   // its parts joined by "+"
	tenants []string // linked tenant ids, in the configuration's order
	copy    *vendorcopy.Vendor
	conn    *nats.Conn
}

// start brings the pipeline up: sandbox, NATS, stages, the copies. The
// stages run until close.
func start(ctx context.Context, opts Options, schedule bool) (*pipeline, error) {
	opts.setDefaults()
	p := &pipeline{opts: opts, names: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	dataDir := opts.DataDir
	if dataDir == "" {
		d, err := os.MkdirTemp("", "skolebuss-demo-")
		if err != nil {
			return nil, err
		}
		dataDir = d
		p.cleanups = append(p.cleanups, func() { os.RemoveAll(d) })
	}

	// The sandbox's listener first, so that port 0 resolves to the address
	// the configuration then points at.
	ln, err := net.Listen("tcp", opts.SandboxAddr)
	if err != nil {
		return nil, fmt.Errorf("sandbox address %s: %w (is another demo or sandbox running? use --sandbox-addr)", opts.SandboxAddr, err)
	}
	p.cleanups = append(p.cleanups, func() { ln.Close() })
	opts.SandboxAddr = ln.Addr().String()
	p.opts.SandboxAddr = opts.SandboxAddr

	// The configuration: the demo default, pointed at this run's addresses.
	cfg := config.Demo()
	cfg.Upstream.TokenURL = "http://" + opts.SandboxAddr + "/connect/token"
	cfg.Upstream.APIBase = "http://" + opts.SandboxAddr
	cfg.NATS.Embedded.DataDir = filepath.Join(dataDir, "nats")
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = opts.NATSHost, opts.NATSPort
	cfg.Publisher.SpoolDir = filepath.Join(dataDir, "spool")
	for i := range cfg.Tenants {
		cfg.Tenants[i].Schedule.Interval = opts.Interval
		cfg.Tenants[i].Schedule.Jitter = opts.Interval / 10
		p.names[cfg.Tenants[i].ID] = cfg.Tenants[i].Name
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	p.cfg = cfg

	// The sandbox upstream, on a real loopback port.
	scfg := sandbox.DemoConfig()
	if schedule {
		scfg.GenerationInterval = sandbox.Duration(opts.Interval)
	}
	sb, err := sandbox.New(scfg, opts.Log.With("component", "sandbox"))
	if err != nil {
		return nil, err
	}
	p.sandbox = sb
	p.http = &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.http.Serve(ln) }()

	// NATS JetStream, embedded, with every stream and store provisioned.
	// The configuration has vendors, so the server admits only their users
	// and its own (the pipeline's, which this process connects as).
	bc := app.BusConfig(cfg, "skolebuss-demo")
	bc.Embedded.CredentialsDir, bc.Embedded.Getenv = opts.CredentialsDir, opts.Getenv
	if p.bus, err = bus.Open(ctx, bc, opts.Log.With("component", "nats")); err != nil {
		return nil, fmt.Errorf("embedded NATS on %s:%d: %w (use --nats-port)", opts.NATSHost, opts.NATSPort, err)
	}
	if p.tel, err = telemetry.New(ctx, app.TelemetryConfig(cfg), opts.Log); err != nil {
		return nil, err
	}
	rt := app.Runtime{Config: cfg, Bus: p.bus, Logger: opts.Log, Tracer: p.tel.TracerProvider(), Meter: p.tel.MeterProvider()}
	if p.req, err = app.NewRequester(rt); err != nil {
		return nil, err
	}
	p.progress = newProgress(opts.Out, opts.Live, opts.Width, p.names)
	p.progress.quota = p.quotaLines
	if p.vendor, err = vendorcopy.New(p.bus.JS, vendorcopy.Config{OnProgress: p.progress.update, ProgressEvery: 500,
		Logger: opts.Log.With("component", "vendor")}); err != nil {
		return nil, err
	}
	drain := app.StageOptions{Drain: 10 * time.Second}
	fetch, err := app.NewFetcher(rt, drain)
	if err != nil {
		return nil, err
	}
	pub, err := app.NewPublisher(rt, drain)
	if err != nil {
		return nil, err
	}
	// The fan-out provisions each vendor's stream, which its copy reads.
	fan, err := app.NewFanout(ctx, rt, app.StageOptions{})
	if err != nil {
		return nil, err
	}
	for _, v := range cfg.Vendors {
		// Each vendor's copy connects as the vendor's own user, as a
		// vendor's system would: the server lets it read its stream only.
		log := opts.Log.With("component", "vendor", "vendor", v.Name)
		user := natsauth.UserName(v.Name)
		pw, ok := p.bus.Server.Password(user)
		if !ok {
			return nil, fmt.Errorf("the embedded server has no user %s", user)
		}
		nc, err := bus.Connect(ctx, p.bus.Server.ClientURL(), bus.Config{Name: "skolebuss-demo-" + user, User: user,
			Password: pw, InboxPrefix: natsauth.InboxPrefix(v.Name)}, log)
		if err != nil {
			return nil, fmt.Errorf("vendor %s: %w", v.Name, err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		c, err := vendorcopy.New(js, vendorcopy.Config{Vendor: v.Name, OnProgress: p.progress.vendorUpdate(v.Name),
			ProgressEvery: 1 << 30, Logger: log})
		if err != nil {
			nc.Close()
			return nil, err
		}
		p.vendors = append(p.vendors, vendorCopy{name: v.Name, profile: strings.Join(v.Parts(), "+"),
			tenants: append([]string(nil), v.Tenants...), copy: c, conn: nc})
	}

	// The stages run until close cancels them; each drains its work first.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = cancel
	g, gctx := errgroup.WithContext(sctx)
	p.stages = g
	g.Go(func() error { return fetch.Run(gctx) })
	g.Go(func() error { return pub.Run(gctx) })
	g.Go(func() error { return fan.Run(gctx) })
	g.Go(func() error { return p.vendor.Run(gctx) })
	for _, v := range p.vendors {
		g.Go(func() error { return v.copy.Run(gctx) })
	}
	if schedule {
		g.Go(func() error { return p.req.Run(gctx) })
	}
	ok = true
	return p, nil
}

// close stops the stages (they drain their work in hand), flushes
// telemetry, closes NATS and the sandbox. Safe to call on a partial start.
func (p *pipeline) close() error {
	var errs []error
	if p.stop != nil {
		p.stop()
		if err := p.stages.Wait(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	for _, v := range p.vendors {
		v.conn.Close() // before the server stops: no reconnecting
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if p.tel != nil {
		errs = append(errs, p.tel.Shutdown(ctx))
	}
	if p.bus != nil {
		errs = append(errs, p.bus.Close(ctx))
	}
	if p.http != nil {
		errs = append(errs, p.http.Shutdown(ctx))
	}
	if p.sandbox != nil {
		errs = append(errs, p.sandbox.Close())
	}
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	return errors.Join(errs...)
}

// Run runs the pipeline until ctx ends: every tenant is exported at once and
// then on its schedule, while the sandbox advances a generation every
// Interval, so changes keep flowing to the vendor. Progress goes to Out.
func Run(ctx context.Context, opts Options) error {
	p, err := start(ctx, opts, true)
	if err != nil {
		return err
	}
	o := p.opts
	fmt.Fprintf(o.Out, "skolebuss demo: sandbox upstream on http://%s, NATS JetStream on nats://%s\n",
		o.SandboxAddr, p.bus.Conn.ConnectedAddr())
	p.printCredentials(o.Out)
	fmt.Fprintf(o.Out, "exports every %s, the sandbox advances a generation every %s; Ctrl-C stops.\n\n", o.Interval, o.Interval)
	for _, t := range p.cfg.Tenants {
		if _, err := p.req.RequestNow(ctx, t.ID, ""); err != nil {
			fmt.Fprintf(o.Out, "%s: could not request an export: %v\n", t.Name, err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.progress.loop(ctx)
	}()
	<-ctx.Done()
	wg.Wait()
	fmt.Fprintln(o.Out, "\nstopping: consumers stop, work in hand finishes, telemetry is flushed ...")
	err = p.close()
	if err == nil {
		fmt.Fprintln(o.Out, "stopped cleanly.")
	}
	return err
}

// printCredentials says how a vendor and an operator command connect to the
// demo's NATS server: as whom, and where each password is (never the
// password itself).
func (p *pipeline) printCredentials(w io.Writer) {
	where := func(c bus.Credential) string {
		if c.File != "" {
			return "password in " + c.File
		}
		return "password from $" + c.Env
	}
	fmt.Fprintf(w, "NATS admits its users only. A vendor connects to %s as its user, with its inbox prefix, and reads its stream:\n",
		p.bus.Server.ClientURL())
	for _, c := range p.bus.Server.Credentials() {
		if c.User == bus.EmbeddedUserName {
			continue
		}
		for _, v := range p.vendors {
			if natsauth.UserName(v.name) == c.User {
				fmt.Fprintf(w, "  %s: user %s, inbox prefix %s, stream %s, %s\n", v.name, c.User,
					natsauth.InboxPrefix(v.name), natsauth.StreamName(v.name), where(c))
			}
		}
	}
	for _, c := range p.bus.Server.Credentials() {
		if c.User == bus.EmbeddedUserName {
			fmt.Fprintf(w, "skolebuss watch, export, dlq and the daemons, run by this OS user here, connect as %s (%s).\n",
				c.User, where(c))
		}
	}
}
