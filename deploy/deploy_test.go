// Package deploy_test checks the distributed deployment description
// (docker-compose.yml and deploy/) against the code, as far as that can be
// done without a container engine: every mounted file exists, every service
// the others depend on is defined, every secret comes from the operator's
// .env, the configs load, every metric the alerts and the dashboard use is
// produced by the code under the name Prometheus will see, and the daemons
// accept the flags compose gives them. nats_test.go checks the NATS confs.
package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.yaml.in/yaml/v3"

	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/sandbox"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

const root = ".." // the repository root, seen from deploy/

type composeFile struct {
	Services map[string]struct {
		Image       string                                `yaml:"image"`
		Build       *struct{ Context, Dockerfile string } `yaml:"build"`
		Command     []string                              `yaml:"command"`
		Environment map[string]string                     `yaml:"environment"`
		Volumes     []string                              `yaml:"volumes"`
		DependsOn   map[string]any                        `yaml:"depends_on"`
		Deploy      struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func readCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// mounts maps each service's container paths to the repository files
// mounted there.
func mounts(t *testing.T, c composeFile, service string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range c.Services[service].Volumes {
		parts := strings.Split(v, ":")
		if strings.HasPrefix(parts[0], "./") && len(parts) >= 2 {
			out[parts[1]] = filepath.Join(root, parts[0])
		}
	}
	return out
}

func TestComposeServicesMountsAndDependencies(t *testing.T) {
	c := readCompose(t)
	for _, want := range []string{"nats-1", "nats-2", "nats-3", "sandbox", "requester", "fetcher", "publisher",
		"fanout", "otel-collector", "jaeger", "prometheus", "grafana"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s mounts the volume %s, which is not declared", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not defined", name, dep)
			}
		}
	}
	for svc, n := range map[string]int{"fetcher": 2, "publisher": 2} {
		if got := c.Services[svc].Deploy.Replicas; got != n {
			t.Errorf("%s: %d replicas, want %d", svc, got, n)
		}
	}
	// The NATS nodes each mount their own conf and the shared accounts and
	// users, beside each other (accounts.conf includes ./users.conf).
	for i := 1; i <= 3; i++ {
		m := mounts(t, c, "nats-"+strconv.Itoa(i))
		if filepath.Base(m["/etc/nats/nats.conf"]) != "nats-"+strconv.Itoa(i)+".conf" || m["/etc/nats/accounts.conf"] == "" ||
			filepath.Base(m["/etc/nats/users.conf"]) != "users.conf" {
			t.Errorf("nats-%d mounts %v", i, m)
		}
	}
}

// Every secret in compose is a ${VAR:?...} taken from .env, every such
// variable is in deploy/env.example, the NATS servers get every password
// accounts.conf references, and each stage gets the variables its config
// names.
func TestComposeSecretsComeFromEnvFile(t *testing.T) {
	c := readCompose(t)
	example := readEnvExample(t)
	raw, _ := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	ref := regexp.MustCompile(`\$\{([A-Z0-9_]+)(:\?[^}]*)?\}`)
	for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml uses ${%s}, which deploy/env.example does not list", m[1])
		}
		if m[2] == "" {
			t.Errorf("${%s} has no :? guard: compose would start with it empty", m[1])
		}
	}
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_ENV") {
				continue // the name of a variable, not a secret (checked below)
			}
			if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET")) && !ref.MatchString(v) {
				t.Errorf("%s: %s is written inline, not taken from .env", name, k)
			}
		}
	}
	accounts, _ := os.ReadFile(filepath.Join("nats", "accounts.conf"))
	users, _ := os.ReadFile(filepath.Join("nats", "users.conf"))
	for _, m := range regexp.MustCompile(`password:\s*\$([A-Z0-9_]+)`).FindAllStringSubmatch(string(accounts)+string(users), -1) {
		for i := 1; i <= 3; i++ {
			if _, ok := c.Services["nats-"+strconv.Itoa(i)].Environment[m[1]]; !ok {
				t.Errorf("nats-%d does not get %s", i, m[1])
			}
		}
	}
	// Each stage connects as its own user, with the password from its own
	// variable: serviceConfig resolves it from the service's environment
	// alone, so a password the service is not given fails here.
	for _, svc := range stages {
		cfg, env := serviceConfig(t, c, svc, example)
		if cfg.NATS.User != svc || cfg.NATS.PasswordEnv != strings.ToUpper(svc)+"_PASSWORD" {
			t.Errorf("%s connects as NATS user %q with the password in %s", svc, cfg.NATS.User, cfg.NATS.PasswordEnv)
		}
		if cfg.NATS.Password.Reveal() != example[cfg.NATS.PasswordEnv] {
			t.Errorf("%s: its NATS password is not .env's %s", svc, cfg.NATS.PasswordEnv)
		}
		for k := range env {
			if strings.HasSuffix(k, "_PASSWORD") && k != cfg.NATS.PasswordEnv {
				t.Errorf("%s gets %s too: a stage gets its own NATS password only", svc, k)
			}
		}
		_, hasSecret := env["SKOLEBUSS_DEMO_SECRET"]
		if hasSecret != (svc == "fetcher") {
			t.Errorf("%s: has the upstream client secret: %v (only the fetcher calls the upstream)", svc, hasSecret)
		}
	}
}

// stages are the compose services that run a skolebuss daemon, each named
// like its NATS user.
var stages = []string{"requester", "fetcher", "publisher", "fanout"}

// serviceConfig is the configuration the daemon of a compose service runs
// with, and that process's environment: the file compose mounts at
// /etc/skolebuss/skolebuss.yaml, the SKOLEBUSS_* variables of the service's
// environment applied (each ${VAR:?...} taken from dotenv, as compose takes
// it from .env), validated, and its secrets resolved from that environment
// only (the NATS ones only, for the daemons that never call the upstream).
func serviceConfig(t *testing.T, c composeFile, svc string, dotenv map[string]string) (*config.Config, map[string]string) {
	t.Helper()
	path := mounts(t, c, svc)["/etc/skolebuss/skolebuss.yaml"]
	if path == "" {
		t.Fatalf("%s mounts no /etc/skolebuss/skolebuss.yaml", svc)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s: %v", svc, err)
	}
	ref := regexp.MustCompile(`^\$\{([A-Z0-9_]+)(:\?[^}]*)?\}$`)
	env := map[string]string{}
	for k, v := range c.Services[svc].Environment {
		if m := ref.FindStringSubmatch(v); m != nil {
			v = dotenv[m[1]]
		}
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }
	if err := cfg.Apply(getenv); err != nil {
		t.Fatalf("%s: %v", svc, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", svc, err)
	}
	resolve := cfg.ResolveNATSSecrets
	if svc == "fetcher" {
		resolve = cfg.ResolveSecrets
	}
	if err := resolve(getenv, os.ReadFile); err != nil {
		t.Fatalf("%s: %v", svc, err)
	}
	return cfg, env
}

func readEnvExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env.example: %q is not NAME=value", line)
		}
		out[k] = v
	}
	return out
}

// The compose config loads and validates, resolves its secrets from the
// env.example values and points at the compose services; each daemon runs
// with it, changed in the NATS user only.
func TestSkolebussComposeConfigLoads(t *testing.T) {
	example := readEnvExample(t)
	base, err := config.Load("skolebuss.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, cfg *config.Config) {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.ResolveSecrets(func(k string) string { return example[k] }, os.ReadFile); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	check("skolebuss.compose.yaml", base)
	if base.Environment != config.Sandbox || base.NATS.Replicas != 3 {
		t.Errorf("environment %s, replicas %d", base.Environment, base.NATS.Replicas)
	}
	var hosts []string
	for _, u := range strings.Split(base.NATS.URL, ",") {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, pu.Host)
	}
	if !slices.Equal(hosts, []string{"nats-1:4222", "nats-2:4222", "nats-3:4222"}) {
		t.Errorf("nats.url %s", base.NATS.URL)
	}
	for _, u := range []string{base.Upstream.TokenURL, base.Upstream.APIBase} {
		if pu, _ := url.Parse(u); pu.Host != "sandbox:8765" {
			t.Errorf("upstream %s is not the sandbox service", u)
		}
	}
	if base.Telemetry.OTLPEndpoint != "http://otel-collector:4318" || base.Telemetry.MetricsAddr != "0.0.0.0:9464" {
		t.Errorf("telemetry %+v", base.Telemetry)
	}
	// The quotas reset when the upstream's do: the fetchers count in the
	// zone the sandbox service counts in.
	sb, err := sandbox.LoadConfig("sandbox.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if base.Upstream.QuotaZone != sb.QuotaTimezone || sb.QuotaTimezone == "UTC" {
		t.Errorf("upstream.quota_zone %q, the sandbox counts in %q", base.Upstream.QuotaZone, sb.QuotaTimezone)
	}
	app, ok := base.Application(config.DemoApplication)
	if !ok || app.ClientSecretEnv != "SKOLEBUSS_DEMO_SECRET" || app.ClientSecret.IsZero() {
		t.Errorf("the demo application's secret is not taken from SKOLEBUSS_DEMO_SECRET")
	}
	var ids []string
	for _, tn := range base.Tenants {
		ids = append(ids, tn.ID)
	}
	for _, dt := range config.DemoTenants {
		if !slices.Contains(ids, dt.ID) {
			t.Errorf("demo tenant %s (%s) missing", dt.ID, dt.Name)
		}
	}
	// Every daemon runs with this file: compose changes its NATS user
	// through the environment, and nothing else.
	c := readCompose(t)
	for _, svc := range stages {
		cfg, _ := serviceConfig(t, c, svc, example)
		if !sameExported(withoutIdentity(*cfg), withoutIdentity(*base)) {
			t.Errorf("%s runs with a config that differs from skolebuss.compose.yaml in more than the NATS user", svc)
		}
		if !strings.HasSuffix(mounts(t, c, svc)["/etc/skolebuss/skolebuss.yaml"], filepath.Join("deploy", "skolebuss.compose.yaml")) {
			t.Errorf("%s does not mount deploy/skolebuss.compose.yaml", svc)
		}
	}
}

// withoutIdentity is c without its NATS user and the secrets resolved
// into it, which differ by process.
func withoutIdentity(c config.Config) config.Config {
	c.NATS.User, c.NATS.PasswordEnv, c.NATS.Password = "", "", ""
	c.Applications = slices.Clone(c.Applications)
	for i := range c.Applications {
		c.Applications[i].ClientSecret = ""
	}
	return c
}

// sameExported compares the exported fields of two configs (not the file
// and line bookkeeping).
func sameExported(a, b config.Config) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		if va.Type().Field(i).IsExported() && !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return false
		}
	}
	return true
}

// ---- metrics ----

// instrument is one OpenTelemetry instrument made in the code.
type instrument struct {
	name, kind, unit, where string
}

var instrumentCall = regexp.MustCompile(`^(Int64|Float64)(Observable)?(Counter|UpDownCounter|Histogram|Gauge)$`)

// instruments finds every instrument created under internal/: calls like
// meter.Int64Counter(name, metric.WithUnit("s")), where name is a string
// literal or a constant of the package.
func instruments(t *testing.T) []instrument {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string][]*ast.File{} // by directory
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files[filepath.Dir(path)] = append(files[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []instrument
	for _, fs := range files {
		consts := map[string]string{}
		for _, f := range fs {
			for _, decl := range f.Decls {
				if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == token.CONST {
					for _, spec := range gd.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									consts[n.Name], _ = strconv.Unquote(lit.Value)
								}
							}
						}
					}
				}
			}
		}
		str := func(e ast.Expr) string {
			switch e := e.(type) {
			case *ast.BasicLit:
				s, _ := strconv.Unquote(e.Value)
				return s
			case *ast.Ident:
				return consts[e.Name]
			}
			return ""
		}
		for _, f := range fs {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				m := instrumentCall.FindStringSubmatch(sel.Sel.Name)
				if m == nil {
					return true
				}
				in := instrument{name: str(call.Args[0]), kind: m[3], where: fset.Position(call.Pos()).String()}
				for _, a := range call.Args[1:] {
					if c, ok := a.(*ast.CallExpr); ok {
						if s, ok := c.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "WithUnit" && len(c.Args) == 1 {
							in.unit = str(c.Args[0])
						}
					}
				}
				if in.name == "" {
					t.Errorf("%s: an instrument whose name is not a constant", in.where)
					return true
				}
				out = append(out, in)
				return true
			})
		}
	}
	return out
}

var unitSuffix = map[string]string{"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}

// promName is the name Prometheus gets for an instrument: dots to
// underscores, the unit's suffix unless the name ends with it, _total for
// counters.
func promName(in instrument) string {
	n := strings.ReplaceAll(in.name, ".", "_")
	if s := unitSuffix[in.unit]; s != "" && !strings.HasSuffix(n, "_"+s) {
		n += "_" + s
	}
	if in.kind == "Counter" {
		n += "_total"
	}
	return n
}

// The naming rules are the exporter's: each instrument of the code, made
// again with its kind and unit in the real telemetry package, is scraped
// under promName.
func TestPromNamingMatchesTheExporter(t *testing.T) {
	ins := instruments(t)
	if len(ins) < 8 {
		t.Fatalf("found only %d instruments under internal/: %v", len(ins), ins)
	}
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	m := tel.Meter("deploy-test")
	for _, in := range ins {
		u := metric.WithUnit(in.unit)
		switch in.kind {
		case "Counter":
			c, _ := m.Int64Counter(in.name, u)
			c.Add(ctx, 1)
		case "UpDownCounter":
			c, _ := m.Int64UpDownCounter(in.name, u)
			c.Add(ctx, 1)
		case "Histogram":
			h, _ := m.Float64Histogram(in.name, u)
			h.Record(ctx, 1)
		case "Gauge":
			g, _ := m.Int64Gauge(in.name, u)
			g.Record(ctx, 1)
		}
	}
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, in := range ins {
		if !strings.Contains(rec.Body.String(), "# TYPE "+promName(in)+" ") {
			t.Errorf("%s (%s): the exporter does not serve %s", in.name, in.where, promName(in))
		}
	}
}

// knownSeries are the Prometheus series names the code produces, and the
// label names they can carry.
func knownSeries(t *testing.T) (names, labels map[string]bool) {
	names = map[string]bool{"up": true} // Prometheus's own, per target
	for _, in := range instruments(t) {
		n := promName(in)
		names[n] = true
		if in.kind == "Histogram" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	labels = map[string]bool{"job": true, "instance": true, "le": true, "otel_scope_name": true, "otel_scope_version": true}
	keyLit := regexp.MustCompile(`attribute\.(?:String|Int|Int64|Bool|Float64)\("([^"]+)"`)
	keyConst := regexp.MustCompile(`(?m)^\s*Key\w+\s*=\s*"([^"]+)"`)
	_ = filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, re := range []*regexp.Regexp{keyLit, keyConst} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				labels[strings.ReplaceAll(m[1], ".", "_")] = true
			}
		}
		return nil
	})
	return names, labels
}

var (
	promFuncs = map[string]bool{"sum": true, "max": true, "min": true, "avg": true, "count": true, "rate": true,
		"increase": true, "irate": true, "histogram_quantile": true, "by": true, "without": true, "on": true,
		"ignoring": true, "and": true, "or": true, "unless": true, "bool": true, "topk": true, "label_values": true,
		"humanize": true, "humanizePercentage": true, "offset": true, "absent": true, "clamp_max": true,
		"time": true, "max_over_time": true, "absent_over_time": true}
	identRe   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	groupRe   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcherRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"`)
	stringRe  = regexp.MustCompile(`"[^"]*"|\[[^\]]*\]|\$\w+`)
	offsetRe  = regexp.MustCompile(`\boffset\s+-?[0-9][0-9a-z]*`)
)

// checkExpr reports the metric names and labels of a PromQL expression
// the code does not produce.
func checkExpr(t *testing.T, where, expr string, names, labels map[string]bool) {
	t.Helper()
	for _, g := range groupRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				t.Errorf("%s: label %q is not an attribute the code sets: %s", where, l, expr)
			}
		}
	}
	for _, m := range matcherRe.FindAllStringSubmatch(expr, -1) {
		if !labels[m[1]] {
			t.Errorf("%s: label %q is not an attribute the code sets: %s", where, m[1], expr)
		}
	}
	rest := groupRe.ReplaceAllString(expr, " ")
	rest = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(rest, " ")
	rest = stringRe.ReplaceAllString(rest, " ")
	rest = offsetRe.ReplaceAllString(rest, " offset ")
	found := false
	for _, id := range identRe.FindAllString(rest, -1) {
		if promFuncs[id] {
			continue
		}
		if !names[id] {
			t.Errorf("%s: metric %s is not produced by the code: %s", where, id, expr)
		}
		found = true
	}
	if !found {
		t.Errorf("%s: no metric in %s", where, expr)
	}
}

func TestAlertsUseMetricsTheCodeProduces(t *testing.T) {
	names, labels := knownSeries(t)
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" {
				t.Errorf("group %s: a rule without alert, expr or severity: %+v", g.Name, r)
			}
			seen[r.Alert] = true
			checkExpr(t, "alerts.yml "+r.Alert, r.Expr, names, labels)
		}
	}
	for _, want := range []string{"SkolebussQuotaApproaching", "SkolebussQuotaNearlyExhausted", "SkolebussQuotaPaused", "SkolebussQuotaRunsOutBeforeReset", "SkolebussDeadLetters",
		"SkolebussBreakerOpen", "SkolebussUpstreamThrottling", "SkolebussNoExportApplied", "SkolebussTenantNeverApplied",
		"SkolebussExportHeld"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// The per-tenant staleness alerts cover every tenant of the compose config:
// each in exactly one SkolebussNoExportApplied rule, whose threshold is
// twice the tenant's schedule interval, and each named in
// SkolebussTenantNeverApplied.
func TestStalenessAlertsCoverEveryTenant(t *testing.T) {
	cfg, err := config.Load("skolebuss.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	group := regexp.MustCompile(`skolebuss_publish_last_applied_seconds\{skolebuss_tenant=~"([^"]+)"\}`)
	threshold := regexp.MustCompile(`>\s*(\d+)\s*$`)
	named := regexp.MustCompile(`skolebuss_tenant="([^"]+)"`)
	limit := map[string]time.Duration{} // tenant -> its rule's threshold
	never := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			switch r.Alert {
			case "SkolebussNoExportApplied":
				gm, tm := group.FindStringSubmatch(r.Expr), threshold.FindStringSubmatch(strings.TrimSpace(r.Expr))
				if gm == nil || tm == nil {
					t.Errorf("SkolebussNoExportApplied: %q names no tenant group or no threshold in seconds", r.Expr)
					continue
				}
				secs, _ := strconv.Atoi(tm[1])
				for _, id := range strings.Split(gm[1], "|") {
					if _, dup := limit[id]; dup {
						t.Errorf("tenant %s is in two SkolebussNoExportApplied rules", id)
					}
					limit[id] = time.Duration(secs) * time.Second
					if tn, ok := cfg.Tenant(id); ok {
						if d, err := time.ParseDuration(r.Labels["schedule"]); err != nil || d != tn.Schedule.Interval {
							t.Errorf("tenant %s (every %s) is in the rule labelled schedule %q", id, tn.Schedule.Interval, r.Labels["schedule"])
						}
					}
				}
			case "SkolebussTenantNeverApplied":
				for _, m := range named.FindAllStringSubmatch(r.Expr, -1) {
					never[m[1]] = true
				}
			}
		}
	}
	for _, tn := range cfg.Tenants {
		got, ok := limit[tn.ID]
		switch {
		case !ok:
			t.Errorf("tenant %s (%s) is in no SkolebussNoExportApplied rule", tn.ID, tn.Name)
		case got != 2*tn.Schedule.Interval:
			t.Errorf("tenant %s (%s): alert after %s, want twice its interval %s", tn.ID, tn.Name, got, tn.Schedule.Interval)
		}
		if !never[tn.ID] {
			t.Errorf("tenant %s (%s) is not in SkolebussTenantNeverApplied", tn.ID, tn.Name)
		}
	}
	for id := range limit {
		if _, ok := cfg.Tenant(id); !ok {
			t.Errorf("SkolebussNoExportApplied names tenant %s, which the compose config does not have", id)
		}
	}
}

func TestDashboardUsesMetricsTheCodeProduces(t *testing.T) {
	names, labels := knownSeries(t)
	b, err := os.ReadFile(filepath.Join("grafana", "dashboards", "skolebuss.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string
		Panels []struct {
			Type, Title string
			Datasource  struct{ UID string }
			Targets     []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name, Definition string
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("skolebuss.json: %v", err)
	}
	ds, _ := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "prometheus.yaml"))
	var titles []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		if !strings.Contains(string(ds), "uid: "+p.Datasource.UID) {
			t.Errorf("panel %q uses data source %q, which is not provisioned", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, names, labels)
		}
	}
	lv := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`)
	for _, v := range d.Templating.List {
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
			continue
		}
		if !names[m[1]] || !labels[m[2]] {
			t.Errorf("variable %s: %s or %s is not produced by the code", v.Name, m[1], m[2])
		}
	}
	for _, want := range []string{"Quota approach per application", "Dead letters by stage", "Circuit breaker per tenant", "Fetched bytes",
		"Change events by entity and op", "Last applied export per tenant", "Exports by outcome"} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q", want)
		}
	}
	// Grafana finds the dashboard where the provider looks.
	c := readCompose(t)
	prov, _ := os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards", "dashboards.yaml"))
	path := regexp.MustCompile(`path:\s*(\S+)`).FindStringSubmatch(string(prov))
	if path == nil || filepath.Clean(mounts(t, c, "grafana")[path[1]]) != filepath.Join(root, "deploy", "grafana", "dashboards") {
		t.Errorf("the dashboard provider's path %v is not where compose mounts deploy/grafana/dashboards", path)
	}
}

// Prometheus scrapes the port the daemons serve /metrics on and loads the
// rules compose mounts; the collector receives on the port the daemons
// export to and sends to the jaeger service.
func TestPrometheusAndCollectorWiring(t *testing.T) {
	c := readCompose(t)
	cfg, err := config.Load("skolebuss.compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, metricsPort, _ := net.SplitHostPort(cfg.Telemetry.MetricsAddr)
	b, _ := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
			DNS     []struct {
				Names []string
				Port  int
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	pm := mounts(t, c, "prometheus")
	for _, r := range prom.RuleFiles {
		if pm[r] == "" {
			t.Errorf("rule file %s is not mounted", r)
		}
	}
	scraped := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNS {
			for _, n := range d.Names {
				if _, ok := c.Services[n]; !ok {
					t.Errorf("job %s scrapes %s, not a service", sc.JobName, n)
				}
				if strconv.Itoa(d.Port) != metricsPort {
					t.Errorf("job %s scrapes port %d; the daemons serve %s", sc.JobName, d.Port, metricsPort)
				}
				scraped[n] = true
			}
		}
	}
	for _, s := range stages {
		if !scraped[s] {
			t.Errorf("%s is not scraped", s)
		}
	}

	b, _ = os.ReadFile("otel-collector.yaml")
	var col struct {
		Receivers  map[string]map[string]map[string]map[string]string
		Processors map[string]any
		Exporters  map[string]map[string]any
		Extensions map[string]any
		Service    struct {
			Extensions []string
			Pipelines  map[string]struct{ Receivers, Processors, Exporters []string }
		}
	}
	if err := yaml.Unmarshal(b, &col); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cfg.Telemetry.OTLPEndpoint)
	if _, ok := c.Services[u.Hostname()]; !ok {
		t.Errorf("telemetry.otlp_endpoint %s is not a service", cfg.Telemetry.OTLPEndpoint)
	}
	if ep := col.Receivers["otlp"]["protocols"]["http"]["endpoint"]; !strings.HasSuffix(ep, ":"+u.Port()) {
		t.Errorf("the collector receives OTLP/HTTP on %q, the daemons send to port %s", ep, u.Port())
	}
	if ep, _ := col.Exporters["otlp/jaeger"]["endpoint"].(string); ep != "jaeger:4317" {
		t.Errorf("the jaeger exporter sends to %q", ep)
	}
	if c.Services["jaeger"].Environment["COLLECTOR_OTLP_ENABLED"] != "true" {
		t.Error("jaeger does not take OTLP")
	}
	if cm := mounts(t, c, "otel-collector"); cm["/etc/otelcol/config.yaml"] == "" || !slices.Contains(c.Services["otel-collector"].Command, "--config=/etc/otelcol/config.yaml") {
		t.Error("the collector does not run with deploy/otel-collector.yaml")
	}
	for name, p := range col.Service.Pipelines {
		for _, r := range p.Receivers {
			if _, ok := col.Receivers[r]; !ok {
				t.Errorf("pipeline %s: receiver %s is not defined", name, r)
			}
		}
		for _, r := range p.Processors {
			if _, ok := col.Processors[r]; !ok {
				t.Errorf("pipeline %s: processor %s is not defined", name, r)
			}
		}
		for _, r := range p.Exporters {
			if _, ok := col.Exporters[r]; !ok {
				t.Errorf("pipeline %s: exporter %s is not defined", name, r)
			}
		}
	}
}

// The image builds every program compose runs, and each program accepts the
// flags compose gives it (the real binaries' flag parsing, via --help).
func TestComposeCommandsExistWithTheirFlags(t *testing.T) {
	c := readCompose(t)
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]bool{}
	for _, m := range regexp.MustCompile(`\./cmd/(\w+)`).FindAllStringSubmatch(string(df), -1) {
		if _, err := os.Stat(filepath.Join(root, "cmd", m[1])); err != nil {
			t.Errorf("the Dockerfile builds ./cmd/%s, which does not exist", m[1])
		}
		built[m[1]] = true
	}
	if !strings.Contains(string(df), "CGO_ENABLED=0") || !regexp.MustCompile(`(?m)^USER\s+\d+`).Match(df) {
		t.Error("the Dockerfile does not build static binaries or does not run as a non-root user")
	}
	bins := t.TempDir()
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		if len(s.Command) == 0 || !strings.HasPrefix(s.Command[0], "/usr/local/bin/") {
			t.Errorf("%s runs %v", name, s.Command)
			continue
		}
		prog := strings.TrimPrefix(s.Command[0], "/usr/local/bin/")
		if !built[prog] {
			t.Errorf("%s runs %s, which the image does not build", name, prog)
			continue
		}
		for _, a := range s.Command[1:] {
			if strings.HasPrefix(a, "/etc/") && mounts(t, c, name)[a] == "" {
				t.Errorf("%s: %s is not mounted", name, a)
			}
		}
		if testing.Short() {
			continue
		}
		bin := filepath.Join(bins, prog)
		if _, err := os.Stat(bin); err != nil {
			if out, err := exec.Command("go", "build", "-o", bin, "../cmd/"+prog).CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", prog, err, out)
			}
		}
		// A command of the CLI (skolebuss provision) is named before its flags.
		args := s.Command[1:]
		var sub []string
		for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			sub, args = append(sub, args[0]), args[1:]
		}
		help, _ := exec.Command(bin, append(sub, "--help")...).CombinedOutput()
		for _, a := range args {
			if flag, _, _ := strings.Cut(a, "="); strings.HasPrefix(flag, "--") &&
				!regexp.MustCompile(`(?m)^\s+-`+regexp.QuoteMeta(strings.TrimPrefix(flag, "--"))+`\b`).Match(help) {
				t.Errorf("%s: %s has no flag %s", name, prog, flag)
			}
		}
	}
}
