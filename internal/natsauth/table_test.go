package natsauth

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
)

// tableVendors are the vendors of the table test: two, so each vendor's
// stream is another's to be refused.
var tableVendors = []string{"alpha", "beta"}

// try is one row of the table: an identity tries one subject.
type try struct {
	who     string
	call    string // what the row tries, for the table
	subject string // published on, or subscribed to
	sub     bool   // a subscription, not a request
	want    bool   // the description allows it
}

// TestPermissionsTable runs a nats-server from what Write writes for the
// description (Identities), provisions everything as the provision
// identity, and for every identity tries every JetStream API verb on every
// stream and store (every consumer verb on each consumer the description
// names and on one it does not), every subject any identity publishes on,
// and subscribing to "_INBOX.>", ">", each identity's inbox and the
// resync requests. Each try must be refused by the server exactly when the
// description (Identity.Allows, AllowsPublish, AllowsSubscribe: the grants,
// not the rendered subjects) does not allow it.
//
// Every request carries the body "!", which no JetStream API call accepts:
// an allowed call is answered with an error and changes nothing, so one
// server serves the whole table; a subject nothing answers gets the
// server's "no responders", which also shows the publish was let through.
// A refusal is the server's permissions violation for exactly that subject.
func TestPermissionsTable(t *testing.T) {
	ids := Identities(tableVendors)
	s, env := startDescribed(t, ids)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Provision as the provision identity: what it may do is enough.
	pc := connectAs(t, s, ids, Provision, env)
	if _, err := bus.ProvisionAll(ctx, pc.js, bus.ProvisionConfig{}, tableVendors); err != nil {
		t.Fatalf("provision as its identity: %v", err)
	}
	admin := connectAs(t, s, ids, Operator, env)

	var failed []string
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "identity\ttry\tsubject\tdescription\tserver\t")
	total := 0
	for _, id := range ids {
		probes := probesOf(id, ids)
		got := run(t, ctx, connectAs(t, s, ids, id.Name, env), admin.nc, probes)
		for i, p := range probes {
			total++
			mark := ""
			if got[i] != verdict(p.want) {
				mark = "  <-- differs"
				failed = append(failed, fmt.Sprintf("%s %s %s: description %s, server %s", p.who, p.call, p.subject, verdict(p.want), got[i]))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.who, p.call, p.subject, verdict(p.want), got[i], mark)
		}
	}
	_ = tw.Flush()
	if len(failed) > 0 {
		t.Errorf("%d of %d tries differ from the description:\n%s\n\nthe whole table:\n%s",
			len(failed), total, strings.Join(failed, "\n"), table.String())
	}
	if total < 1000 {
		t.Errorf("only %d tries", total)
	}
	t.Logf("%d tries, each as the description says", total)
}

func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "refused"
}

// probesOf are the rows of id: the JetStream API, the subjects of every
// identity, the subscriptions.
func probesOf(id Identity, all []Identity) []try {
	var out []try
	add := func(call, subject string, want bool) {
		out = append(out, try{who: id.Name, call: call, subject: subject, want: want})
	}
	for _, v := range AccountVerbs {
		add(string(v), "$JS.API."+string(v), id.Allows(v, "", ""))
	}
	streams := AllStreams(tableVendors)
	for _, s := range streams {
		for _, v := range StreamVerbs {
			want := id.Allows(v, s, "")
			switch v {
			case DirectGet:
				add(string(v), "$JS.API.DIRECT.GET."+s, want)
				add(string(v)+" (last of a subject)", "$JS.API.DIRECT.GET."+s+".some.subject", want)
			case FlowControl:
				add(string(v), "$JS.FC."+s+".x.y", want)
			default:
				add(string(v), "$JS.API."+string(v)+"."+s, want)
			}
		}
		add("CONSUMER.CREATE (unnamed)", "$JS.API.CONSUMER.CREATE."+s, id.Allows(ConsumerCreate, s, ""))
		for _, c := range consumersOf(s, all) {
			for _, v := range ConsumerVerbs {
				want := id.Allows(v, s, c)
				switch v {
				case ConsumerCreate:
					add(string(v), "$JS.API.CONSUMER.CREATE."+s+"."+c, want)
					add(string(v)+" (filtered)", "$JS.API.CONSUMER.CREATE."+s+"."+c+".some.subject", want)
				case Ack:
					add(string(v), "$JS.ACK."+s+"."+c+".1.2.3.4.5", want)
				default:
					add(string(v), "$JS.API."+string(v)+"."+s+"."+c, want)
				}
			}
		}
	}
	// every subject any identity publishes on, made concrete
	var subjects []string
	for _, other := range all {
		for _, p := range other.Publish {
			if c := concrete(p); !slices.Contains(subjects, c) {
				subjects = append(subjects, c)
			}
		}
	}
	for _, c := range []string{"lms.t.person.created", "vendor.gamma.t.x", "vendorreq.gamma.resync.t", "anything.else"} {
		if !slices.Contains(subjects, c) {
			subjects = append(subjects, c)
		}
	}
	for _, c := range subjects {
		add("publish", c, id.AllowsPublish(c))
	}
	subs := []string{"_INBOX.>", ">", "vendorreq.*.resync.*", "lms.>", "$JS.API.>"}
	for _, other := range all {
		if other.InboxPrefix != "" {
			subs = append(subs, other.InboxPrefix+".>")
		}
	}
	for _, sub := range subs {
		out = append(out, try{who: id.Name, call: "subscribe", subject: sub, sub: true, want: id.AllowsSubscribe(sub)})
	}
	return out
}

// consumersOf are the consumers tried on stream: each the description
// names there, and one it names nowhere.
func consumersOf(stream string, all []Identity) []string {
	out := []string{"stranger"}
	for _, id := range all {
		for _, g := range id.API {
			if g.Stream == stream && g.Consumer != "" && g.Consumer != AnyConsumer && !slices.Contains(out, g.Consumer) {
				out = append(out, g.Consumer)
			}
		}
	}
	return out
}

// concrete is a subject matched by pattern.
func concrete(pattern string) string {
	toks := strings.Split(pattern, ".")
	for i, tok := range toks {
		switch tok {
		case "*":
			toks[i] = "t"
		case ">":
			toks[i] = "t.x"
		}
	}
	return strings.Join(toks, ".")
}

// conn is an identity's connection with the permissions violations the
// server sent it, by subject.
type conn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu      sync.Mutex
	refused map[string]bool // "Publish subject" or "Subscription subject"
}

var violationRE = regexp.MustCompile(`Permissions Violation for (Publish|Subscription) to "([^"]*)"`)

func connectAs(t *testing.T, s *server.Server, ids []Identity, name string, env map[string]string) *conn {
	t.Helper()
	c := &conn{refused: map[string]bool{}}
	opts := []nats.Option{nats.UserInfo(name, env[passwordEnv(name)]),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if m := violationRE.FindStringSubmatch(err.Error()); m != nil {
				c.mu.Lock()
				c.refused[m[1]+" "+m[2]] = true
				c.mu.Unlock()
			}
		})}
	for _, id := range ids {
		if id.Name == name && id.InboxPrefix != "" {
			opts = append(opts, nats.CustomInboxPrefix(id.InboxPrefix))
		}
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", name, err)
	}
	t.Cleanup(nc.Close)
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	return c
}

func (c *conn) wasRefused(op, subject string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[op+" "+subject]
}

// run tries every probe as c and returns, per probe, "allowed" (an answer
// or a message arrived), "refused" (the server's violation for its
// subject) or what else happened. admin publishes what the subscriptions
// should receive.
func run(t *testing.T, ctx context.Context, c *conn, admin *nats.Conn, probes []try) []string {
	t.Helper()
	got := make([]string, len(probes))
	answered := make([]chan struct{}, len(probes))
	var subs []*nats.Subscription
	inbox := c.nc.NewRespInbox() // below the identity's prefix
	replies, err := c.nc.Subscribe(inbox[:strings.LastIndex(inbox, ".")]+".probe.*", func(m *nats.Msg) {
		var i int
		if _, err := fmt.Sscanf(m.Subject[strings.LastIndex(m.Subject, ".")+1:], "%d", &i); err == nil && i < len(probes) {
			select {
			case <-answered[i]:
			default:
				close(answered[i])
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = replies.Unsubscribe() }()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i, p := range probes {
		answered[i] = make(chan struct{})
		if p.sub {
			done := answered[i]
			var once sync.Once
			sub, err := c.nc.Subscribe(p.subject, func(*nats.Msg) { once.Do(func() { close(done) }) })
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub)
			continue
		}
		reply := inbox[:strings.LastIndex(inbox, ".")] + fmt.Sprintf(".probe.%d", i)
		if err := c.nc.PublishRequest(p.subject, reply, []byte("!")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// what an allowed subscription receives
	for _, p := range probes {
		if p.sub {
			if err := admin.Publish(concrete(strings.ReplaceAll(p.subject, ">", "*")), []byte("probe")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for left := len(probes); left > 0; {
		for i, p := range probes {
			if got[i] != "" {
				continue
			}
			op := "Publish"
			if p.sub {
				op = "Subscription"
			}
			select {
			case <-answered[i]:
				got[i] = "allowed"
				if c.wasRefused(op, p.subject) {
					got[i] = "allowed and refused"
				}
			default:
				if c.wasRefused(op, p.subject) {
					got[i] = "refused"
				}
			}
			if got[i] != "" {
				left--
			}
		}
		if left == 0 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			for i := range got {
				if got[i] == "" {
					got[i] = "neither answered nor refused"
				}
			}
			left = 0
		}
	}
	return got
}

// passwordEnv is the variable the test gives name's password in.
func passwordEnv(name string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(name)) + "_PASSWORD"
}

// startDescribed starts a nats-server from the users Write writes for ids,
// each password in its variable, and returns the passwords by variable.
func startDescribed(t *testing.T, ids []Identity) (*server.Server, map[string]string) {
	t.Helper()
	env := map[string]string{}
	var vendors []Vendor
	var others []User
	for _, id := range ids {
		env[passwordEnv(id.Name)] = "pw-" + id.Name
		if v, ok := strings.CutPrefix(id.Name, "vendor-"); ok {
			vendors = append(vendors, Vendor{Name: v, Password: Password{Env: passwordEnv(id.Name)}})
			continue
		}
		u := id.User()
		u.Password = Password{Env: passwordEnv(id.Name)}
		others = append(others, u)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	dir := t.TempDir()
	var b bytes.Buffer
	if err := Write(&b, vendors, others...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.conf"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nats.conf")
	conf := "accounts {\n  SKOLEBUSS {\n    jetstream: enabled\n    include ./users.conf\n  }\n}\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the written configuration: %v", err)
	}
	s := bustest.RunServer(t, func(o *server.Options) {
		opts.Host, opts.Port, opts.StoreDir, opts.JetStream = o.Host, o.Port, o.StoreDir, true
		opts.NoLog, opts.NoSigs, opts.DisableJetStreamBanner = o.NoLog, o.NoSigs, o.DisableJetStreamBanner
		*o = *opts
	})
	return s, env
}

// What the description must hold whatever the table says: no stage or
// vendor changes a stream's configuration, deletes a stream or a message,
// or purges anything but an object store it writes; provision cannot
// delete, purge or read; no identity but the operator may receive another's
// inbox, and no two share an inbox prefix.
func TestDescriptionLeastPrivilege(t *testing.T) {
	ids := Identities(tableVendors)
	purges := map[string][]string{
		Fetcher:   {"OBJ_" + bus.ObjectExports},
		Publisher: {"OBJ_" + bus.ObjectExports, "OBJ_" + bus.ObjectSnapshots},
		Fanout:    {"OBJ_" + bus.ObjectFanout},
	}
	prefixes := map[string]string{}
	for _, id := range ids {
		if id.Name == Operator {
			if !id.All {
				t.Error("the operator lacks a right")
			}
			continue
		}
		if id.All {
			t.Errorf("%s has every right", id.Name)
		}
		if other, ok := prefixes[id.InboxPrefix]; ok || id.InboxPrefix == "" || id.InboxPrefix == "_INBOX" {
			t.Errorf("%s receives on %q (%s's too?)", id.Name, id.InboxPrefix, other)
		}
		prefixes[id.InboxPrefix] = id.Name
		for _, sub := range []string{"_INBOX.>", ">", "_INBOX.x"} {
			if id.AllowsSubscribe(sub) {
				t.Errorf("%s may subscribe to %s", id.Name, sub)
			}
		}
		for _, s := range AllStreams(tableVendors) {
			for _, v := range []Verb{StreamDelete, StreamMsgDelete, StreamSnapshot, StreamRestore, StreamStepDown} {
				if id.Allows(v, s, "") {
					t.Errorf("%s may %s %s", id.Name, v, s)
				}
			}
			if id.Name == Provision {
				for _, v := range []Verb{StreamPurge, StreamMsgGet, DirectGet, ConsumerCreate} {
					if id.Allows(v, s, "") || id.Allows(v, s, "x") {
						t.Errorf("provision may %s %s", v, s)
					}
				}
				continue
			}
			for _, v := range []Verb{StreamCreate, StreamUpdate} {
				if id.Allows(v, s, "") {
					t.Errorf("%s may %s %s", id.Name, v, s)
				}
			}
			if id.Allows(StreamPurge, s, "") && !slices.Contains(purges[id.Name], s) {
				t.Errorf("%s may purge %s", id.Name, s)
			}
		}
	}
}
