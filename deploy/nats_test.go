package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fetcher"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/natsauth/natsauthtest"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/requester"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// natsEnv are the password variables the NATS confs reference, with dummy
// values: each differs, so a test can tell which one a user got.
var natsEnv = map[string]string{
	"REQUESTER_PASSWORD":                         "pw-requester",
	"FETCHER_PASSWORD":                           "pw-fetcher",
	"PUBLISHER_PASSWORD":                         "pw-publisher",
	"FANOUT_PASSWORD":                            "pw-fanout",
	"OPERATOR_PASSWORD":                          "pw-operator",
	"PROVISION_PASSWORD":                         "pw-provision",
	"SYS_PASSWORD":                               "pw-sys",
	"SKOLEBUSS_VENDOR_ITSLEARNING_DEMO_PASSWORD": "pw-vendor-itslearning-demo",
	"SKOLEBUSS_VENDOR_ROSTER_ONLY_DEMO_PASSWORD": "pw-vendor-roster-only-demo",
}

// vendorPassword is the password natsEnv gives vendor's user.
func vendorPassword(vendor string) string { return natsEnv[app.VendorPasswordEnv(vendor)] }

func setNATSEnv(t *testing.T) {
	t.Helper()
	for k, v := range natsEnv {
		t.Setenv(k, v)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// loadNATS parses deploy/nats/<name> with the real nats-server parser.
func loadNATS(t *testing.T, name string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(filepath.Join("nats", name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return opts
}

func userByName(opts *server.Options, name string) *server.User {
	for _, u := range opts.Users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func TestNATSConfsParseAsACluster(t *testing.T) {
	setNATSEnv(t)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("nats-%d.conf", i)
		t.Run(name, func(t *testing.T) {
			o := loadNATS(t, name)
			if o.ServerName != fmt.Sprintf("nats-%d", i) {
				t.Errorf("server_name %q", o.ServerName)
			}
			if o.Port != 4222 || o.HTTPPort != 8222 {
				t.Errorf("client port %d, monitoring port %d; want 4222, 8222", o.Port, o.HTTPPort)
			}
			if !o.JetStream || o.StoreDir != "/data/jetstream" {
				t.Errorf("jetstream %v, store_dir %q", o.JetStream, o.StoreDir)
			}
			if o.Cluster.Name != "skolebuss" || o.Cluster.Port != 6222 {
				t.Errorf("cluster %q on port %d", o.Cluster.Name, o.Cluster.Port)
			}
			var hosts []string
			for _, r := range o.Routes {
				if r.Scheme != "nats-route" || r.Port() != "6222" {
					t.Errorf("route %s", r)
				}
				hosts = append(hosts, r.Hostname())
			}
			slices.Sort(hosts)
			if !slices.Equal(hosts, []string{"nats-1", "nats-2", "nats-3"}) {
				t.Errorf("routes to %v, want nats-1, nats-2, nats-3", hosts)
			}
			if o.SystemAccount != "SYS" {
				t.Errorf("system account %q", o.SystemAccount)
			}
			// Every user of the pipeline, in the SKOLEBUSS account, with the
			// password from its own environment variable.
			for user, env := range map[string]string{"requester": "REQUESTER_PASSWORD", "fetcher": "FETCHER_PASSWORD",
				"publisher": "PUBLISHER_PASSWORD", "fanout": "FANOUT_PASSWORD", "operator": "OPERATOR_PASSWORD",
				"vendor-itslearning-demo": app.VendorPasswordEnv("itslearning-demo"),
				"vendor-roster-only-demo": app.VendorPasswordEnv("roster-only-demo")} {
				u := userByName(o, user)
				if u == nil {
					t.Errorf("no user %s", user)
					continue
				}
				if u.Password != natsEnv[env] {
					t.Errorf("user %s: the password is not $%s", user, env)
				}
				if u.Account == nil || u.Account.Name != "SKOLEBUSS" {
					t.Errorf("user %s is not in account SKOLEBUSS", user)
				}
			}
			want := map[string]struct{ pub, notPub, sub []string }{
				"requester": {pub: []string{"jobs.export.>"}, notPub: []string{"lms.>", "exports.fetched.>", "$JS.API.>", "$JS.API.STREAM.DELETE.JOBS",
					"$JS.API.STREAM.UPDATE.LMS", "$JS.API.STREAM.UPDATE.JOBS"},
					sub: []string{"_INBOX_REQUESTER.>"}},
				"fetcher": {pub: []string{"exports.fetched.>", "dlq.fetch.>", "$KV.quota.>", "$KV.ratelimit.>", "$KV.attempts.>", "$O.exports.>", "$JS.ACK.JOBS.fetcher.>"},
					notPub: []string{"lms.>", "jobs.export.>", "$O.snapshots.>", "$JS.API.STREAM.PURGE.JOBS"}},
				"publisher": {pub: []string{"lms.>", "dlq.publish.>", "$O.snapshots.>", "$JS.ACK.EXPORTS.publisher.>"},
					notPub: []string{"jobs.export.>", "exports.fetched.>", "$KV.quota.>", "$JS.API.STREAM.DELETE.LMS"}},
				"fanout": {pub: []string{"vendor.itslearning-demo.>", "vendor.roster-only-demo.>", "$O.fanout.>", "$JS.API.CONSUMER.CREATE.LMS.*"},
					notPub: []string{"lms.>", "jobs.export.>", "vendor.>", "$JS.API.STREAM.PURGE.LMS", "$JS.API.STREAM.DELETE.VENDOR_itslearning-demo",
						"$JS.API.STREAM.UPDATE.DLQ", "$JS.API.STREAM.CREATE.VENDOR_itslearning-demo"},
					sub: []string{"_INBOX_FANOUT.>", "vendorreq.*.resync.*"}},
			}
			for user, w := range want {
				u := userByName(o, user)
				if u == nil || u.Permissions == nil || u.Permissions.Publish == nil {
					t.Errorf("user %s has no publish permissions", user)
					continue
				}
				for _, s := range w.pub {
					if !slices.Contains(u.Permissions.Publish.Allow, s) {
						t.Errorf("user %s may not publish %s", user, s)
					}
				}
				for _, s := range w.notPub {
					if slices.Contains(u.Permissions.Publish.Allow, s) {
						t.Errorf("user %s may publish %s", user, s)
					}
				}
				if len(w.sub) > 0 && !slices.Equal(u.Permissions.Subscribe.Allow, w.sub) {
					t.Errorf("user %s subscribes to %v, want %v", user, u.Permissions.Subscribe.Allow, w.sub)
				}
			}
			if u := userByName(o, "fanout"); u == nil || u.Permissions == nil || u.Permissions.Response == nil {
				t.Error("the fan-out may not answer the vendors' resync requests")
			}
		})
	}
}

// A password variable that is not set stops the server from starting, and no
// conf holds a password of its own.
func TestNATSPasswordsComeFromTheEnvironment(t *testing.T) {
	setNATSEnv(t)
	os.Unsetenv("FETCHER_PASSWORD")
	if _, err := server.ProcessConfigFile(filepath.Join("nats", "nats-1.conf")); err == nil || !strings.Contains(err.Error(), "FETCHER_PASSWORD") {
		t.Fatalf("nats-1.conf with FETCHER_PASSWORD unset: %v", err)
	}
	inline := regexp.MustCompile(`(?m)^\s*[{\s]*(?:[^#\n]*[\s{,])?password\s*[:=]\s*([^\s,}]+)`)
	files, _ := filepath.Glob(filepath.Join("nats", "*.conf"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range inline.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasPrefix(m[1], "$") {
				t.Errorf("%s: an inline password: %s", f, strings.TrimSpace(m[0]))
			}
		}
	}
}

// Whichever process starts first makes every stream and store: each stage's
// user may, on an empty server.
// A stage's user may not create its streams: on a server nothing was
// provisioned on, each stage stops at start naming what is missing and
// `skolebuss provision`; provision, as its user, creates everything (and
// changes nothing when run again), after which every stage starts.
func TestNATSStagesStartOnWhatProvisionMade(t *testing.T) {
	s := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, user := range stages {
		_, err := tryOpenAs(t, ctx, s.ClientURL(), user)
		if !errors.Is(err, bus.ErrNotProvisioned) || !strings.Contains(err.Error(), "skolebuss provision") {
			t.Errorf("%s on an empty server: %v, want it to name what is missing and skolebuss provision", user, err)
		}
	}
	first := provisionAs(t, ctx, s.ClientURL())
	for _, c := range first {
		if c.Action != "created" {
			t.Errorf("first provisioning: %s %s, want created", c.Stream, c.Action)
		}
	}
	for _, c := range provisionAs(t, ctx, s.ClientURL()) {
		if c.Action != "unchanged" {
			t.Errorf("second provisioning: %s %s, want unchanged", c.Stream, c.Action)
		}
	}
	for _, user := range stages {
		b := openAs(t, ctx, s.ClientURL(), user)
		if b.Provisioned {
			t.Errorf("%s provisioned: a stage's user only checks", user)
		}
	}
}

// provisionAs runs what the compose service provision runs (skolebuss
// provision) against url, as the user and password that service gets, with
// one replica (one node here).
func provisionAs(t *testing.T, ctx context.Context, url string) []bus.Change {
	t.Helper()
	cfg := composeServiceConfig(t, natsauth.Provision)
	bc := app.ClientBusConfig(cfg, natsauth.Provision)
	if bc.InboxPrefix != natsauth.StageInboxPrefix(natsauth.Provision) || bc.Verify != nil {
		t.Fatalf("provision connects with inbox %q, checking %v", bc.InboxPrefix, bc.Verify)
	}
	nc, err := bus.Connect(ctx, url, bc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := bus.ProvisionAll(ctx, js, bus.ProvisionConfig{DuplicateWindow: cfg.NATS.DuplicateWindow,
		LMSMaxAge: config.LMSMaxAge}, app.VendorNames(cfg))
	if err != nil {
		t.Fatalf("provision as its user: %v", err)
	}
	return changes
}

// composeServiceConfig is serviceConfig of the compose service svc with
// the test's passwords.
func composeServiceConfig(t *testing.T, svc string) *config.Config {
	t.Helper()
	dotenv := maps.Clone(natsEnv)
	dotenv["SKOLEBUSS_DEMO_SECRET"] = config.DemoSecret // the fetcher's
	cfg, _ := serviceConfig(t, readCompose(t), svc, dotenv)
	return cfg
}

// startNATS runs one node from nats-1.conf in the process: its accounts,
// users and permissions as written, JetStream in a temporary directory,
// without the cluster (the other nodes do not exist here) and on free ports.
func startNATS(t *testing.T) *server.Server {
	t.Helper()
	setNATSEnv(t)
	conf := loadNATS(t, "nats-1.conf")
	return bustest.RunServer(t, func(o *server.Options) {
		// The conf as written, but for where the test server listens, keeps
		// its store and logs; no monitoring port and no cluster.
		conf.Host, conf.Port, conf.StoreDir = o.Host, o.Port, o.StoreDir
		conf.NoLog, conf.NoSigs, conf.DisableJetStreamBanner = o.NoLog, o.NoSigs, o.DisableJetStreamBanner
		conf.HTTPPort = 0
		conf.Cluster, conf.Routes = server.ClusterOpts{}, nil
		*o = *conf
	})
}

// openAs connects to url as compose runs user: a stage (requester, fetcher,
// publisher) with the NATS user and password its compose service gets
// through serviceConfig, the operator with deploy/skolebuss.compose.yaml as
// written. Only the config's credentials are used: the test server is one
// node, not the cluster the config names.
func openAs(t *testing.T, ctx context.Context, url, user string) *bus.Bus {
	t.Helper()
	b, err := tryOpenAs(t, ctx, url, user)
	if err != nil {
		t.Fatalf("bus.Open as %s: %v", user, err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(cctx)
	})
	return b
}

// tryOpenAs is openAs returning bus.Open's error: the bus as the daemon
// opens it (app.ClientBusConfig: a stage's inbox prefix, and the streams it
// checks instead of provisioning), on url, with one replica.
func tryOpenAs(t *testing.T, ctx context.Context, url, user string) (*bus.Bus, error) {
	t.Helper()
	var cfg *config.Config
	if slices.Contains(stages, user) {
		cfg = composeServiceConfig(t, user)
	} else {
		var err error
		if cfg, err = config.Load("skolebuss.compose.yaml"); err != nil {
			t.Fatal(err)
		}
		if err := cfg.ResolveNATSSecrets(func(k string) string { return natsEnv[k] }, os.ReadFile); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.NATS.User != user {
		t.Fatalf("compose runs %s as NATS user %q", user, cfg.NATS.User)
	}
	bc := app.ClientBusConfig(cfg, user)
	bc.URL, bc.Provision = url, bus.ProvisionConfig{}
	return bus.Open(ctx, bc, quiet())
}

// TestNATSPermissionsCarryThePipeline runs the real stages, each as its own
// user, against a server built from the confs: the requester requests two
// exports of a tenant and one of a tenant whose application the fetcher does
// not know; the fetcher fetches from the sandbox (quota alerts on), stores and
// announces; the publisher publishes the changes and replaces the snapshot.
// The operator's demo vendor must end with the tenant's exact copy, the
// unknown application's job must be in the DLQ and a quota alert in ALERTS.
// If an allow the code needs were missing, a stage would fail or stall here.
func TestNATSPermissionsCarryThePipeline(t *testing.T) {
	s := startNATS(t)
	url := s.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provisionAs(t, ctx, url)

	sc := sandbox.DemoConfig()
	for i := range sc.Tenants {
		sc.Tenants[i].Size = "tiny"
	}
	sb, err := sandbox.New(sc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler())
	defer func() { srv.Close(); _ = sb.Close() }()

	// The operator's demo vendor reads the LMS stream, to check the result.
	op := openAs(t, ctx, url, "operator")
	v, err := vendorcopy.New(op.JS, vendorcopy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	const running = 6 // the demo vendor, fetcher, publisher, fan-out and the two vendors' copies
	done := make(chan error, running)
	defer func() {
		stop()
		for range running {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("a stage ended with: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("a stage did not stop within 15s")
				return
			}
		}
	}()
	go func() { done <- v.Run(runCtx) }()

	fb := openAs(t, ctx, url, "fetcher")
	tokens, err := auth.New(auth.Config{TokenURL: srv.URL + sandbox.PathToken, Applications: []auth.Application{{
		Name: "skolebuss-demo", ClientID: sandbox.DemoClientID, ClientSecret: sandbox.DemoClientSecret,
		Scopes: []string{sandbox.ScopeLMSExport}}}}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	fcfg := fetcher.Config{
		API:          flytapi.Config{APIBase: srv.URL},
		Applications: map[string]quota.Limits{"skolebuss-demo": {Rate: 50, Burst: 50, Daily: 8, AlertAt: []float64{0.25}}},
		AckWait:      5 * time.Second, DrainTimeout: 2 * time.Second, Backoff: []time.Duration{100 * time.Millisecond},
	}
	go func() {
		done <- fetcher.Run(runCtx, fcfg, fetcher.Deps{JS: fb.JS, Stores: fb.Stores, Tokens: tokens, Logger: quiet()})
	}()
	// The fetcher's sweep of abandoned downloads reads the store's subjects
	// and metadata: its user may.
	if _, err := fetcher.SweepOrphanChunks(ctx, fb.JS, time.Hour); err != nil {
		t.Errorf("sweep as the fetcher: %v", err)
	}

	pb := openAs(t, ctx, url, "publisher")
	pub, err := publisher.New(pb.Conn, pb.Stores.Exports, pb.Stores.Snapshots, publisher.Config{
		Diff: diff.Config{SpoolDir: t.TempDir(), DeleteThreshold: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		wc := publisher.WorkerConfig()
		wc.AckWait, wc.DrainTimeout = 5*time.Second, 2*time.Second
		done <- pub.Run(runCtx, pb.JS, wc, quiet(), nil)
	}()

	// The fan-out, as its own user, delivers to the vendors of the compose
	// configuration; each vendor reads its own stream as its own user.
	fo := openAs(t, ctx, url, "fanout")
	composeCfg, err := config.Load("skolebuss.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	composeCfg.NATS.Replicas = 1 // one node here, not the cluster
	fan, err := app.NewFanout(ctx, app.Runtime{Config: composeCfg, Bus: fo, Logger: quiet()}, app.StageOptions{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatalf("the fan-out as its user: %v", err)
	}
	go func() { done <- fan.Run(runCtx) }()
	copies := map[string]*vendorcopy.Vendor{}
	for _, name := range app.VendorNames(composeCfg) {
		vnc, err := nats.Connect(url, nats.UserInfo(natsauth.UserName(name), vendorPassword(name)),
			nats.CustomInboxPrefix(natsauth.InboxPrefix(name)))
		if err != nil {
			t.Fatalf("connect as vendor %s: %v", name, err)
		}
		t.Cleanup(vnc.Close)
		vjs, err := jetstream.New(vnc)
		if err != nil {
			t.Fatal(err)
		}
		if copies[name], err = vendorcopy.New(vjs, vendorcopy.Config{Vendor: name, Logger: quiet()}); err != nil {
			t.Fatal(err)
		}
		go func() { done <- copies[name].Run(runCtx) }()
	}

	rb := openAs(t, ctx, url, "requester")
	tenant := sandbox.DemoTenantFjordvik
	req, err := requester.New(rb.JS, requester.Config{Tenants: []requester.Tenant{
		{ID: tenant, Application: "skolebuss-demo"},
		{ID: sandbox.DemoTenantMaaneby, Application: "not-configured"},
	}}, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitExports := func(n int) vendorcopy.Status {
		t.Helper()
		for {
			if st, ok := v.Status(tenant); ok && st.Exports >= n {
				if !st.Matched {
					t.Fatalf("the vendor's copy does not match: %s", st.Mismatch)
				}
				return st
			}
			select {
			case <-ctx.Done():
				st, _ := v.Status(tenant)
				t.Fatalf("export %d never completed (vendor status %+v)", n, st)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if _, err := req.RequestNow(ctx, tenant, "perm-1"); err != nil {
		t.Fatalf("requester: %v", err)
	}
	first := waitExports(1)
	if first.Applied == 0 {
		t.Fatal("the first export applied no changes")
	}
	// A second export of the same tenant: the publisher replaces the
	// snapshot and deletes the export the old one came from.
	if _, err := req.RequestNow(ctx, tenant, "perm-2"); err != nil {
		t.Fatalf("requester: %v", err)
	}
	waitExports(2)
	// Both vendors have the tenant: the fan-out delivered both exports to
	// each, and each vendor's copy matches its own export.completed.
	for name, c := range copies {
		for {
			st, ok := c.Status(tenant)
			if ok && st.Exports >= 2 {
				if !st.Matched {
					t.Fatalf("vendor %s's copy does not match: %s", name, st.Mismatch)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("vendor %s never received both exports (status %+v)", name, st)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	if _, err := req.RequestNow(ctx, sandbox.DemoTenantMaaneby, "perm-dlq"); err != nil {
		t.Fatalf("requester: %v", err)
	}
	waitMsgs(t, ctx, op.JS, bus.StreamDLQ, "dlq.fetch."+sandbox.DemoTenantMaaneby)
	waitMsgs(t, ctx, op.JS, bus.StreamAlerts, "alerts.quota.skolebuss-demo")
}

// waitMsgs polls until stream holds a message on subject.
func waitMsgs(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, subject string) {
	t.Helper()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err == nil && info.State.Subjects[subject] > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no message on %s in %s", subject, stream)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// violations connects as user and collects the permission violations the
// server reports to it.
func violations(t *testing.T, url, user, pass string, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts = append(opts, nats.UserInfo(user, pass), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func expectViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("%s: %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: allowed", what)
	}
}

// Each user is refused what is not its stage's: the requester cannot publish
// events, the fetcher cannot touch snapshots, the publisher cannot put jobs,
// and a vendor reads its own consumer only.
func TestNATSPermissionsRefuseOtherStagesSubjects(t *testing.T) {
	s := startNATS(t)
	url := s.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := openAs(t, ctx, url, "operator")

	for _, c := range []struct{ user, subject string }{
		{"requester", "lms.t1.person.created"},
		{"requester", "$JS.API.STREAM.DELETE.JOBS"},
		{"fetcher", "lms.t1.person.created"},
		{"fetcher", "$O.snapshots.M.x"},
		{"fetcher", "dlq.publish.t1"},
		{"publisher", "jobs.export.t1"},
		{"publisher", "$KV.quota.x"},
		{"publisher", "$JS.API.STREAM.PURGE.LMS"},
		{"fanout", "lms.t1.person.created"},
		{"fanout", "jobs.export.t1"},
		{"fanout", "vendor.another.t1.person.created"},
		{"fanout", "$JS.API.STREAM.DELETE.VENDOR_itslearning-demo"},
		{"vendor-itslearning-demo", "vendor.itslearning-demo.t1.person.created"},
		// what a stage's user could do before the stages lost provisioning
		{"requester", "$JS.API.STREAM.UPDATE.LMS"},
		{"fetcher", "$JS.API.STREAM.UPDATE.DLQ"},
		{"fetcher", "$JS.API.STREAM.PURGE.OBJ_snapshots"},
		{"publisher", "$JS.API.STREAM.UPDATE.DLQ"},
		{"publisher", "$JS.API.STREAM.UPDATE.OBJ_snapshots"},
		{"publisher", "$JS.API.CONSUMER.DELETE.LMS.fanout-itslearning-demo"},
		{"fanout", "$JS.API.STREAM.UPDATE.DLQ"},
		{"fanout", "$JS.API.STREAM.PURGE.OBJ_exports"},
		{"provision", "$JS.API.STREAM.DELETE.LMS"},
		{"provision", "$JS.API.STREAM.PURGE.LMS"},
		{"provision", "$JS.API.STREAM.MSG.GET.LMS"},
	} {
		pass := natsEnv[strings.ToUpper(c.user)+"_PASSWORD"]
		opts := []nats.Option{}
		if v, ok := strings.CutPrefix(c.user, "vendor-"); ok {
			pass = vendorPassword(v)
			opts = append(opts, nats.CustomInboxPrefix(natsauth.InboxPrefix(v)))
		}
		nc, errs := violations(t, url, c.user, pass, opts...)
		if err := nc.Publish(c.subject, []byte("x")); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, c.user+" publishing "+c.subject)
	}
	// No stage reads the replies in flight of another: "_INBOX.>" is
	// refused to every one of them.
	for _, user := range append(slices.Clone(stages), "provision") {
		nc, errs := violations(t, url, user, natsEnv[strings.ToUpper(user)+"_PASSWORD"])
		if _, err := nc.SubscribeSync("_INBOX.>"); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, user+" subscribing to _INBOX.>")
	}

	// The fan-out's streams, as it provisions them: vendor itslearning-demo
	// pulls from a consumer of its own on its stream and acks, and is
	// refused the other vendor's stream, the LMS stream and every inbox.
	vendors := []string{config.DemoVendorContact, config.DemoVendorRoster}
	if _, err := bus.ProvisionVendors(ctx, op.JS, bus.ProvisionConfig{}, vendors); err != nil {
		t.Fatal(err)
	}
	for _, v := range vendors {
		if _, err := op.JS.Publish(ctx, "vendor."+v+".t1.person.created", []byte(`{"n":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	v := config.DemoVendorContact
	vnc, verrs := violations(t, url, natsauth.UserName(v), vendorPassword(v), nats.CustomInboxPrefix(natsauth.InboxPrefix(v)))
	vjs, err := jetstream.New(vnc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := vjs.CreateOrUpdateConsumer(ctx, bus.VendorStream(v), jetstream.ConsumerConfig{Durable: "lms", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("the vendor cannot make its consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("the vendor cannot ack: %v", err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("the vendor pulled %d messages, want 1", got)
	}
	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, time.Second)
		t.Cleanup(cancel)
		return c
	}
	if _, err := vjs.CreateOrUpdateConsumer(short(), bus.VendorStream(config.DemoVendorRoster), jetstream.ConsumerConfig{Durable: "sneak"}); err == nil {
		t.Error("the vendor made a consumer on another vendor's stream")
	}
	expectViolation(t, verrs, "vendor making a consumer on another vendor's stream")
	if _, err := vjs.CreateOrUpdateConsumer(short(), "LMS", jetstream.ConsumerConfig{Durable: "sneak"}); err == nil {
		t.Error("the vendor made a consumer on LMS")
	}
	expectViolation(t, verrs, "vendor making a consumer on LMS")
	if _, err := vnc.SubscribeSync("lms.>"); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, verrs, "vendor subscribing to lms.>")
	if _, err := vnc.SubscribeSync("_INBOX.>"); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, verrs, "vendor subscribing to every inbox")
}

// users.conf is what `skolebuss vendors nats-config --stage-users` writes
// for deploy/skolebuss.compose.yaml today (app.WriteNATSUsers is the
// command's writer), so it cannot drift from the configuration's vendors or
// from natsauth; and nats-server, reading the cluster's conf that includes
// it, gives every vendor exactly natsauth's permissions and the stages
// theirs.
func TestNATSUsersAreWhatTheGeneratorWrites(t *testing.T) {
	cfg, err := config.Load("skolebuss.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Vendors) < 2 {
		t.Fatalf("skolebuss.compose.yaml has %d vendors, want the demo's two", len(cfg.Vendors))
	}
	var want strings.Builder
	if err := app.WriteNATSUsers(&want, cfg, true); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("nats", "users.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatal("deploy/nats/users.conf is not what the generator writes; run\n" +
			"  go run ./cmd/skolebuss vendors nats-config --config deploy/skolebuss.compose.yaml --stage-users -o deploy/nats/users.conf")
	}

	setNATSEnv(t)
	o := loadNATS(t, "nats-1.conf")
	for _, v := range cfg.Vendors {
		u := userByName(o, natsauth.UserName(v.Name))
		if u == nil {
			t.Fatalf("no user for vendor %s", v.Name)
		}
		if u.Password != vendorPassword(v.Name) || u.Account == nil || u.Account.Name != "SKOLEBUSS" {
			t.Errorf("vendor %s: not in the account with the password of %s", v.Name, app.VendorPasswordEnv(v.Name))
		}
		natsauthtest.SamePermissions(t, u.Username, u.Permissions, natsauth.VendorPermissions(v.Name).Server())
	}
	for _, su := range natsauth.StageUsers(app.VendorNames(cfg)) {
		u := userByName(o, su.Name)
		if u == nil {
			t.Fatalf("no user %s", su.Name)
		}
		if su.Permissions == nil {
			if u.Permissions != nil {
				t.Errorf("%s has permissions %+v, want every right", su.Name, u.Permissions)
			}
			continue
		}
		natsauthtest.SamePermissions(t, su.Name, u.Permissions, su.Permissions.Server())
	}
	n := 0
	for _, u := range o.Users {
		if u.Account != nil && u.Account.Name == "SKOLEBUSS" {
			n++
		}
	}
	if want := len(cfg.Vendors) + len(natsauth.StageUsers(nil)); n != want {
		t.Errorf("%d users in the account, want %d", n, want)
	}
}
