package app

import (
	"context"
	"errors"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/natsauth/natsauthtest"
)

// The embedded server of a configuration with vendors admits only its
// users: a vendor reads its own stream and is refused the other vendor's,
// the LMS stream, the jobs and the dead letters; a client without a user is
// refused; the password of a vendor whose variable is not set is made by the
// server and written 0600 into its credentials directory, and so is the
// pipeline's own, which a process joining the server reads
// (ClientBusConfig), and which is gone once the server stops.
func TestEmbeddedServerAdmitsTheVendorsUsersOnly(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the default credentials directory
	cfg := config.Demo()
	cfg.NATS.Embedded.DataDir = t.TempDir()
	cfg.NATS.Embedded.Port = -1
	a, b := config.DemoVendorContact, config.DemoVendorRoster
	bc := BusConfig(cfg, "test")
	bc.Embedded.Getenv = func(k string) string {
		if k == VendorPasswordEnv(a) {
			return "pw-a"
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pipe, err := bus.Open(ctx, bc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open the embedded server with the vendors' users: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = pipe.Close(context.Background())
		}
	}()
	url := pipe.Server.ClientURL()
	pu, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(pu.Port())
	wantDir := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "skolebuss", "nats-127.0.0.1-"+pu.Port())
	// The pipeline's connection has every right: it provisions and writes.
	if _, err := bus.ProvisionVendors(ctx, pipe.JS, bc.Provision, VendorNames(cfg)); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"vendor." + a + ".t1.person.created", "vendor." + b + ".t1.person.created",
		"lms.t1.person.created", "jobs.export.t1", "dlq.fetch.t1"} {
		if _, err := pipe.JS.Publish(ctx, subj, []byte(`{"secret":"`+subj+`"}`)); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}

	var fileB, fileOwn string
	for _, c := range pipe.Server.Credentials() {
		switch c.User {
		case natsauth.UserName(a):
			if c.Env != VendorPasswordEnv(a) || c.File != "" {
				t.Errorf("vendor %s's password: %+v, want its variable's", a, c)
			}
		case natsauth.UserName(b):
			fileB = c.File
		case bus.EmbeddedUserName:
			fileOwn = c.File
		}
	}
	for _, f := range []string{fileB, fileOwn} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("a password file the server made: %v", err)
		}
		if st.Mode().Perm() != 0o600 || filepath.Dir(f) != wantDir {
			t.Errorf("%s: mode %v, want 0600 in %s", f, st.Mode().Perm(), wantDir)
		}
	}

	// Vendor a reads its own stream, and only that.
	va := natsauthtest.Connect(t, url, natsauth.UserName(a), "pw-a", natsauth.InboxPrefix(a))
	cons, err := va.JS.CreateOrUpdateConsumer(ctx, bus.VendorStream(a), jetstream.ConsumerConfig{Durable: "kit", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("vendor %s's consumer on its stream: %v", a, err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || m.Subject() != "vendor."+a+".t1.person.created" {
		t.Fatalf("vendor %s read %v (%v)", a, m, err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Errorf("ack: %v", err)
	}
	for _, stream := range []string{bus.VendorStream(b), bus.StreamLMS, bus.StreamJobs, bus.StreamDLQ} {
		if err := va.RefusedConsumer(stream); err != nil {
			t.Errorf("vendor %s, consumer on %s: %v", a, stream, err)
		}
	}
	for _, c := range []struct{ subject, publishOn string }{
		{"vendor." + b + ".>", "vendor." + b + ".t1.person.created"},
		{"lms.>", "lms.t1.person.created"},
		{"_INBOX.>", "_INBOX.probe"},
	} {
		if err := va.RefusedSubscribe(pipe.Conn, c.subject, c.publishOn); err != nil {
			t.Errorf("vendor %s: %v", a, err)
		}
	}

	// Vendor b with the password the server made for it.
	pwB, err := os.ReadFile(fileB)
	if err != nil {
		t.Fatal(err)
	}
	vb := natsauthtest.Connect(t, url, natsauth.UserName(b), strings.TrimSpace(string(pwB)), natsauth.InboxPrefix(b))
	if _, err := vb.JS.Stream(ctx, bus.VendorStream(b)); err != nil {
		t.Errorf("vendor %s's own stream: %v", b, err)
	}
	if err := vb.RefusedConsumer(bus.VendorStream(a)); err != nil {
		t.Errorf("vendor %s, consumer on %s: %v", b, bus.VendorStream(a), err)
	}

	// Without a user, or as a vendor with a wrong password: refused.
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo(natsauth.UserName(a), "wrong")}} {
		if nc, err := nats.Connect(url, opts...); err == nil {
			nc.Close()
			t.Errorf("connected with %d options", len(opts))
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("refused for another reason: %v", err)
		}
	}

	// A process joining the server finds the pipeline's password.
	joined := *cfg
	joined.NATS.Embedded.Port = port
	cb := ClientBusConfig(&joined, "joiner")
	if cb.User != bus.EmbeddedUserName || cb.Password.IsZero() {
		t.Fatalf("a joining process connects as %q", cb.User)
	}
	byURL := *cfg
	byURL.NATS.URL = url // --nats-url naming the server
	if cu := ClientBusConfig(&byURL, "joiner"); cu.User != bus.EmbeddedUserName || cu.Password != cb.Password {
		t.Errorf("a process given the server's URL connects as %q", cu.User)
	}
	nc, err := bus.Connect(ctx, cb.URL, cb, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(ctx, bus.StreamLMS); err != nil {
		t.Errorf("the joining process reads the LMS stream: %v", err)
	}
	nc.Close()

	if err := pipe.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, f := range []string{fileB, fileOwn} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left after the server stopped: %v", f, err)
		}
	}
}
