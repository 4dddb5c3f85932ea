package bustest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
)

// Option changes a test server's options before it starts: users and
// permissions, a store directory that outlives one server (to restart on
// it), a cluster's routes.
type Option func(*server.Options)

// RunServer starts a nats-server with JetStream in this process, as
// nats-server's own tests do: on a free port of 127.0.0.1, its store in a
// directory of t.TempDir(), no log, no signal handlers. opts change the
// options in order before the start. It waits until the server accepts
// clients (and JetStream runs, if the options ask for it), and shuts it
// down at the end of the test.
func RunServer(t testing.TB, opts ...Option) *server.Server {
	t.Helper()
	o := &server.Options{
		Host:                   "127.0.0.1",
		Port:                   -1,
		JetStream:              true,
		StoreDir:               t.TempDir(),
		NoLog:                  true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	for _, opt := range opts {
		opt(o)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server %s did not accept clients within 10s", s.Name())
	}
	if o.JetStream && !s.JetStreamEnabled() {
		t.Fatalf("nats-server %s: JetStream did not start (store %s)", s.Name(), o.StoreDir)
	}
	return s
}

// Connect connects to s and returns the connection and its JetStream; the
// connection is closed at the end of the test.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", s.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Open starts a server (RunServer with opts) and opens a bus on it as a
// stage does: connected, with every stream and store provisioned. Its
// Server is nil (the server is the test's); b.Conn.ConnectedUrl() is the
// server's URL, for a process the test starts. The bus is closed at the end
// of the test, before the server stops.
func Open(t testing.TB, opts ...Option) *bus.Bus {
	t.Helper()
	s := RunServer(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: s.ClientURL()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open the bus: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}
