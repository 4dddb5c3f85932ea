package bus

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t testing.TB, dir string, sync bool) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{Embedded: EmbeddedConfig{DataDir: dir, Port: -1, SyncAlways: sync}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func TestProvisionIdempotentAndAsConfigured(t *testing.T) {
	b := openTest(t, t.TempDir(), false)
	ctx := context.Background()
	// Open provisioned once; twice more must change nothing and fail nothing.
	for range 2 {
		if _, err := Provision(ctx, b.JS, ProvisionConfig{}); err != nil {
			t.Fatalf("provision again: %v", err)
		}
	}
	want := map[string]struct {
		retention jetstream.RetentionPolicy
		subject   string
		dup       time.Duration
		maxAge    time.Duration
	}{
		StreamJobs:    {jetstream.WorkQueuePolicy, "jobs.export.>", time.Hour, 0},
		StreamExports: {jetstream.LimitsPolicy, "exports.fetched.>", time.Hour, 7 * 24 * time.Hour},
		StreamLMS:     {jetstream.LimitsPolicy, "lms.>", time.Hour, 30 * 24 * time.Hour},
		StreamDLQ:     {jetstream.LimitsPolicy, "dlq.>", time.Hour, 30 * 24 * time.Hour},
		StreamAlerts:  {jetstream.LimitsPolicy, "alerts.>", time.Hour, 30 * 24 * time.Hour},
	}
	for name, w := range want {
		s, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		c := s.CachedInfo().Config
		if c.Retention != w.retention || len(c.Subjects) != 1 || c.Subjects[0] != w.subject ||
			c.Duplicates != w.dup || c.MaxAge != w.maxAge || c.Storage != jetstream.FileStorage || c.Replicas != 1 {
			t.Errorf("stream %s: retention %v subjects %v duplicates %s max age %s storage %v replicas %d",
				name, c.Retention, c.Subjects, c.Duplicates, c.MaxAge, c.Storage, c.Replicas)
		}
	}
	for _, name := range []string{ObjectExports, ObjectSnapshots} {
		if _, err := b.JS.ObjectStore(ctx, name); err != nil {
			t.Errorf("object store %s: %v", name, err)
		}
	}
	for _, name := range []string{KVQuota, KVRateLimit} {
		if _, err := b.JS.KeyValue(ctx, name); err != nil {
			t.Errorf("key-value bucket %s: %v", name, err)
		}
	}
	// A changed setting is applied in place.
	if _, err := Provision(ctx, b.JS, ProvisionConfig{DuplicateWindow: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, _ := b.JS.Stream(ctx, StreamLMS)
	if d := s.CachedInfo().Config.Duplicates; d != 2*time.Hour {
		t.Errorf("LMS duplicate window after update: %s", d)
	}
}

// Replicas reach every stream's configuration (a cluster's 3); one
// embedded server cannot hold them, so the configurations are checked.
func TestReplicasConfigured(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		want := max(n, 1)
		for _, sc := range (ProvisionConfig{Replicas: n}).StreamConfigs() {
			if sc.Replicas != want {
				t.Errorf("replicas %d: stream %s has %d", n, sc.Name, sc.Replicas)
			}
		}
	}
}

func TestDuplicatesCollapse(t *testing.T) {
	b := openTest(t, t.TempDir(), false)
	ctx := context.Background()
	tenant := "aa750693-e3ea-441b-93fe-6a71a8371afa"
	ev := messages.Event{ID: "evt-1", Tenant: tenant, ExportID: "e1", Entity: pifu.EntityPerson, Op: messages.OpCreated,
		Key: "src/p1", Time: time.Now(), Object: []byte(`{"sourcedid":{"source":"src","id":"p1"}}`)}
	for i := range 2 {
		m, err := messages.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := b.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != (i == 1) {
			t.Errorf("publish %d: duplicate=%v", i, ack.Duplicate)
		}
	}
	// Two scheduled requests for one slot are one job.
	slot := time.Now().Truncate(time.Hour)
	for i, id := range []string{"j-a", "j-b"} {
		m, err := messages.Encode(messages.ExportJob{JobID: id, Tenant: tenant, Application: "skolebuss-demo",
			Reason: messages.ReasonSchedule, Slot: slot, RequestedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := b.JS.PublishMsg(ctx, m)
		if err != nil || ack.Duplicate != (i == 1) {
			t.Errorf("job %s: ack %+v err %v", id, ack, err)
		}
	}
	for name, want := range map[string]uint64{StreamLMS: 1, StreamJobs: 1} {
		s, _ := b.JS.Stream(ctx, name)
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != want {
			t.Errorf("%s holds %d messages, want %d", name, info.State.Msgs, want)
		}
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openTest(t, dir, true)
	if _, err := b.Stores.Exports.PutBytes(ctx, "t/e1.xml", []byte("<enterprise/>")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, "dlq.fetcher.t1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b2 := openTest(t, dir, false)
	got, err := b2.Stores.Exports.GetBytes(ctx, "t/e1.xml")
	if err != nil || !bytes.Equal(got, []byte("<enterprise/>")) {
		t.Fatalf("object after restart: %q, %v", got, err)
	}
	s, _ := b2.JS.Stream(ctx, StreamDLQ)
	if info, _ := s.Info(ctx); info.State.Msgs != 1 {
		t.Errorf("DLQ after restart holds %d messages", info.State.Msgs)
	}
}

func TestConfigRefused(t *testing.T) {
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"no data dir":          {Config{}, "data_dir is required"},
		"bad port":             {Config{Embedded: EmbeddedConfig{DataDir: "d", Port: 70000}}, "port 70000"},
		"bad host":             {Config{Embedded: EmbeddedConfig{DataDir: "d", Host: "example.org"}}, "not an IP"},
		"creds for embedded":   {Config{Embedded: EmbeddedConfig{DataDir: "d"}, Token: auth.Secret("t0k3n")}, "external server"},
		"two credentials":      {Config{URL: "nats://h:4222", CredsFile: "f", User: "u"}, "at most one"},
		"bad scheme":           {Config{URL: "http://h:4222"}, "scheme"},
		"replicas":             {Config{URL: "nats://h", Provision: ProvisionConfig{Replicas: 7}}, "replicas 7"},
		"dup window too large": {Config{URL: "nats://h", Provision: ProvisionConfig{DuplicateWindow: 60 * 24 * time.Hour}}, "duplicate window"},
	}
	for name, c := range cases {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "t0k3n") {
			t.Errorf("%s: secret in error %v", name, err)
		}
	}
}

func TestConnectFailsCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// A port nobody listens on, a password in the URL: the error names the
	// server without the password.
	_, err := Connect(ctx, "nats://user:hunter2@127.0.0.1:1", Config{ConnectTimeout: time.Second}, quiet())
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("connect error %v", err)
	}
}

func TestConnectWithCredentials(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedConfig{DataDir: t.TempDir(), Port: -1}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := Connect(context.Background(), srv.ClientURL(), Config{Name: "skolebuss-test"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
	sub, err := nc.SubscribeSync("ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: "ping", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(2 * time.Second); err != nil {
		t.Fatal(err)
	}
}
