package fanout_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/waitfor"
	"github.com/skolebuss/skolebuss/vendorkit"
)

// authWorld is a world on a server with the users natsauth writes: the
// stage's (the world's bus) and each vendor's, whose password is
// "pw-<vendor>".
func authWorld(t *testing.T, vendors []fanout.Vendor) (*world, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("FANOUT_LOOP_STAGE_PASSWORD", "pw-stage")
	var nv []natsauth.Vendor
	for i, v := range vendors {
		env := fmt.Sprintf("FANOUT_LOOP_VENDOR_%d", i)
		t.Setenv(env, "pw-"+v.Name)
		nv = append(nv, natsauth.Vendor{Name: v.Name, Password: natsauth.Password{Env: env}})
	}
	var users bytes.Buffer
	if err := natsauth.Write(&users, nv, natsauth.User{Name: "stage", Password: natsauth.Password{Env: "FANOUT_LOOP_STAGE_PASSWORD"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.conf"), users.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nats.conf")
	conf := "accounts {\n  SKOLEBUSS {\n    jetstream: enabled\n    include ./users.conf\n  }\n}\n"
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	s := bustest.RunServer(t, func(o *server.Options) {
		opts.Host, opts.Port, opts.StoreDir, opts.JetStream = o.Host, o.Port, o.StoreDir, true
		opts.NoLog, opts.NoSigs, opts.DisableJetStreamBanner = o.NoLog, o.NoSigs, o.DisableJetStreamBanner
		*o = *opts
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{URL: s.ClientURL(), User: "stage", Password: auth.Secret("pw-stage")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	w := &world{b: b, docs: map[string][][]byte{}, vendors: vendors}
	w.provision(t)
	return w, s.ClientURL()
}

// kitRun is a vendor kit consuming its vendor's stream into a MemoryStore
// with the vendor's own NATS user, and the export checks it reported.
type kitRun struct {
	store  *vendorkit.MemoryStore
	kit    *vendorkit.Kit
	mu     sync.Mutex
	checks []vendorkit.ExportCheck
}

func runKit(t *testing.T, url, vendor string) *kitRun {
	t.Helper()
	nc, err := vendorkit.Connect(url, vendor, nats.UserInfo(natsauth.UserName(vendor), "pw-"+vendor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	k := &kitRun{store: vendorkit.NewMemoryStore()}
	k.kit, err = vendorkit.New(nc, k.store, vendorkit.Config{Vendor: vendor, RetryWait: 100 * time.Millisecond,
		ResyncRetry: 2 * time.Second, OnExport: func(c vendorkit.ExportCheck) {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.checks = append(k.checks, c)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.kit.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kit: %v", err)
		}
	})
	return k
}

func (k *kitRun) exportChecks() []vendorkit.ExportCheck {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.checks)
}

// matches reports how the kit's copy of tenant differs from generation g
// of it as vendor v must hold it ("" when it does not).
func (k *kitRun) matches(t *testing.T, w *world, v fanout.Vendor, tenant string, g int) string {
	want := w.truth(t, v, tenant, g)
	sum, err := k.store.Summary(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range sum.Counts {
		n += c
	}
	if uint64(sum.Checksum) != uint64(want.Checksum()) || n != want.Len() {
		return fmt.Sprintf("%s: the kit holds %d records, %s; the truth %d, %s", tenant, n, sum.Checksum,
			want.Len(), vendorkit.Checksum(want.Checksum()))
	}
	return ""
}

// The whole loop under the vendor's real NATS user: the fan-out delivers,
// one change event is lost from the vendor's stream before the kit reads
// it, the kit finds its copy differs at that export.completed, asks for a
// resync, the fan-out accepts and delivers it, and the kit's copy is the
// truth. A tenant unlinked from the vendor (the fan-out restarted without
// it) leaves the kit's store.
func TestKitHealsThroughTheFanout(t *testing.T) {
	roster, _ := projection.ParseProfile()
	v := fanout.Vendor{Name: "kit", Tenants: []string{tenantA, tenantB}, Profile: roster}
	w, url := authWorld(t, []fanout.Vendor{v})
	src := newBareWorld(t, "tiny")
	w.docs = src.docs
	w.publishSettled(t, tenantA, 0)
	w.publishSettled(t, tenantB, 0)
	stop := w.run(t, fanout.Config{})
	w.waitDeliveries(t, "kit", tenantA, 1)
	w.waitDeliveries(t, "kit", tenantB, 1)
	w.publishSettled(t, tenantA, 1)
	w.waitDeliveries(t, "kit", tenantA, 2)

	// The last change event of tenantA's second export lost from the
	// vendor's stream.
	ctx := context.Background()
	var lost uint64
	for _, m := range bustest.Msgs(t, w.b.JS, bus.VendorStream("kit")) {
		if strings.HasPrefix(m.Subject, "vendor.kit."+tenantA+".") && !strings.Contains(m.Subject, ".export.") {
			lost = m.Sequence
		}
	}
	stream, err := w.b.JS.Stream(ctx, bus.VendorStream("kit"))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, lost); err != nil {
		t.Fatal(err)
	}

	k := runKit(t, url, "kit")
	waitfor.Condition(t, 60*time.Second, func() error {
		mismatch, healed := false, false
		for _, c := range k.exportChecks() {
			if c.Tenant != tenantA {
				continue
			}
			if c.ExportID == exportID(tenantA, 1) && !c.Resync && c.Mismatch != "" {
				mismatch = true
			}
			if mismatch && c.Resync && c.Mismatch == "" {
				healed = true
			}
		}
		if !mismatch || !healed {
			return fmt.Errorf("mismatch found %v, resync applied %v: %+v", mismatch, healed, k.exportChecks())
		}
		if d := k.matches(t, w, v, tenantA, 1) + k.matches(t, w, v, tenantB, 0); d != "" {
			return fmt.Errorf("%s", d)
		}
		return nil
	})
	stop()

	// Unlinked: the fan-out restarted with tenantB no longer the vendor's.
	w.run(t, fanout.Config{Vendors: []fanout.Vendor{{Name: "kit", Tenants: []string{tenantA}, Profile: roster}}})
	waitfor.Condition(t, 60*time.Second, func() error {
		if got := k.store.Tenants(); !slices.Equal(got, []string{tenantA}) {
			return fmt.Errorf("the kit holds %v", got)
		}
		if st, _ := k.kit.Status(tenantB); !st.Unlinked {
			return fmt.Errorf("the kit does not know %s unlinked", tenantB)
		}
		return nil
	})
	if d := k.matches(t, w, v, tenantA, 1); d != "" {
		t.Error(d)
	}
}
