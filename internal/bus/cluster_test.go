package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// clusterStreams are the streams Provision creates, the backing streams of
// the object stores and key-value buckets included.
var clusterStreams = []string{
	bus.StreamJobs, bus.StreamExports, bus.StreamLMS, bus.StreamDLQ, bus.StreamAlerts,
	"OBJ_" + bus.ObjectExports, "OBJ_" + bus.ObjectSnapshots,
	"KV_" + bus.KVQuota, "KV_" + bus.KVRateLimit, "KV_" + bus.KVAttempts,
}

// waitReplicated polls the stream until it has a leader and two current
// followers, and returns its info.
func waitReplicated(t *testing.T, js jetstream.JetStream, name string, within time.Duration) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	waitfor.Condition(t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, name)
		if err == nil {
			info, err = s.Info(ctx)
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		c := info.Cluster
		if c == nil {
			return fmt.Errorf("stream %s: no cluster info", name)
		}
		current := 0
		for _, r := range c.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		if c.Leader == "" || len(c.Replicas) != 2 || current != 2 {
			return fmt.Errorf("stream %s not replicated: leader %q, %d replicas, %d current", name, c.Leader, len(c.Replicas), current)
		}
		return nil
	})
	return info
}

// retry runs f with a fresh 2s context until it returns nil or within
// passes, and returns how many attempts failed.
func retry(t *testing.T, what string, within time.Duration, f func(ctx context.Context) error) int {
	t.Helper()
	failed := 0
	waitfor.Condition(t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := f(ctx); err != nil {
			failed++
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return failed
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// On a three-node JetStream cluster, Open with an external URL and
// replicas 3 provisions every stream and store with three current copies,
// a second process provisioning again changes nothing, and losing the LMS
// stream's leader loses neither writes nor the deduplication of event ids.
func TestClusterReplicasAndLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster and shuts down a stream leader (a few seconds); not run under -short")
	}
	servers := bustest.RunCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	cfg := bus.Config{
		URL:           strings.Join(urls, ","),
		Name:          "skolebuss-cluster-test",
		ReconnectWait: 100 * time.Millisecond,
		Provision:     bus.ProvisionConfig{Replicas: 3},
	}
	open := func() *bus.Bus {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := bus.Open(ctx, cfg, quiet())
		if err != nil {
			t.Fatalf("open against the cluster: %v", err)
		}
		if b.Server != nil {
			t.Fatal("open with a url started an embedded server")
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		return b
	}
	b := open()
	ctx := context.Background()

	// Every stream the project provisions, and no other, has three copies.
	var listed []string
	for name := range b.JS.StreamNames(ctx).Name() {
		listed = append(listed, name)
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(clusterStreams))
	if !slices.Equal(listed, want) {
		t.Fatalf("streams on the cluster %v, want %v", listed, want)
	}
	configs := map[string]jetstream.StreamConfig{}
	for _, name := range clusterStreams {
		info := waitReplicated(t, b.JS, name, 10*time.Second)
		if info.Config.Replicas != 3 {
			t.Errorf("stream %s: replicas %d, want 3", name, info.Config.Replicas)
		}
		configs[name] = info.Config
	}

	// A second process provisions the same at its start: no error, no change.
	b2 := open()
	for _, name := range clusterStreams {
		info := waitReplicated(t, b2.JS, name, 10*time.Second)
		if !reflect.DeepEqual(info.Config, configs[name]) {
			t.Errorf("stream %s changed when provisioned again:\n before %+v\n after  %+v", name, configs[name], info.Config)
		}
	}
	if err := b2.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Events, a quota counter and an export before the failover.
	tenant := "aa750693-e3ea-441b-93fe-6a71a8371afa"
	event := func(id string) messages.Event {
		return messages.Event{ID: id, Tenant: tenant, ExportID: "e1", Entity: pifu.EntityPerson, Op: messages.OpCreated,
			Key: "src/" + id, Time: time.Now(), Object: []byte(`{"sourcedid":{"source":"src","id":"` + id + `"}}`)}
	}
	publish := func(ctx context.Context, ev messages.Event) (*jetstream.PubAck, error) {
		m, err := messages.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(messages.HeaderMsgID) != ev.ID {
			t.Fatalf("event %s encoded with Nats-Msg-Id %q", ev.ID, m.Header.Get(messages.HeaderMsgID))
		}
		return b.JS.PublishMsg(ctx, m)
	}
	for _, id := range []string{"evt-1", "evt-2", "evt-3"} {
		ack, err := publish(ctx, event(id))
		if err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		if ack.Duplicate || ack.Stream != bus.StreamLMS {
			t.Fatalf("publish %s: ack %+v", id, ack)
		}
	}
	if _, err := b.Stores.Quota.Put(ctx, "app1.day", []byte("42")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stores.Exports.PutBytes(ctx, "t/e1.xml", []byte("<enterprise/>")); err != nil {
		t.Fatal(err)
	}
	// The writes are on every copy before the leader goes.
	waitReplicated(t, b.JS, bus.StreamLMS, 5*time.Second)

	// Kill the server leading the LMS stream.
	lms, err := b.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		t.Fatal(err)
	}
	info, err := lms.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldLeader := info.Cluster.Leader
	var victim *server.Server
	for _, s := range servers {
		if s.Name() == oldLeader {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("LMS leader %q is none of the cluster's servers", oldLeader)
	}
	start := time.Now()
	victim.Shutdown()
	victim.WaitForShutdown()

	// A new event is stored once a new leader is elected.
	attempts := 0
	failed := retry(t, "publish a new event after the leader's loss", 15*time.Second, func(ctx context.Context) error {
		attempts++
		ack, err := publish(ctx, event("evt-4"))
		if err != nil {
			return err
		}
		// An attempt that timed out may have been stored; its retry is
		// then a duplicate. A first attempt must not be.
		if ack.Duplicate && attempts == 1 {
			t.Errorf("new event evt-4 reported as a duplicate on its first attempt")
		}
		return nil
	})
	t.Logf("LMS leader %s shut down; new event acknowledged after %s (%d failed attempts)", oldLeader, time.Since(start).Round(time.Millisecond), failed)

	// The deduplication state moved with the stream: an event published
	// before the failover is still recognised.
	retry(t, "republish evt-1", 5*time.Second, func(ctx context.Context) error {
		ack, err := publish(ctx, event("evt-1"))
		if err != nil {
			return err
		}
		if !ack.Duplicate {
			t.Errorf("evt-1 republished after the failover was stored again (seq %d)", ack.Sequence)
		}
		return nil
	})
	retry(t, "LMS info after the failover", 5*time.Second, func(ctx context.Context) error {
		info, err := lms.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == oldLeader {
			return fmt.Errorf("leader %+v", info.Cluster)
		}
		if info.State.Msgs != 4 {
			t.Errorf("LMS holds %d messages after the failover, want 4", info.State.Msgs)
		}
		return nil
	})

	// The stores kept what was written before.
	retry(t, "read the quota counter after the failover", 10*time.Second, func(ctx context.Context) error {
		e, err := b.Stores.Quota.Get(ctx, "app1.day")
		if err != nil {
			return err
		}
		if string(e.Value()) != "42" {
			t.Errorf("quota counter after the failover: %q", e.Value())
		}
		return nil
	})
	retry(t, "read the export after the failover", 10*time.Second, func(ctx context.Context) error {
		got, err := b.Stores.Exports.GetBytes(ctx, "t/e1.xml")
		if err != nil {
			return err
		}
		if string(got) != "<enterprise/>" {
			t.Errorf("export after the failover: %q", got)
		}
		return nil
	})
}
