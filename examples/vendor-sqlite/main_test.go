package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/vendortest"
	"github.com/skolebuss/skolebuss/internal/waitfor"
	"github.com/skolebuss/skolebuss/vendorkit"
)

const vendor = "acme"

var tenants = []string{"aa750693-e3ea-441b-93fe-6a71a8371afa", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "0f6d2a4c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"}

// build builds the command into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vendor-sqlite")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestKilledAtRandomPointsConverges runs the built command against a
// vendor's stream, kills it with SIGKILL at random points while exports
// keep coming, starts it again each time, and checks that the SQLite file
// ends holding exactly every tenant's state as its last export.completed
// says, records and checksum.
func TestKilledAtRandomPointsConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := build(t)
	s := bustest.RunServer(t, vendortest.Users(vendor))
	_, js := bustest.Connect(t, s, vendortest.AdminOptions()...)
	ctx := context.Background()
	if err := vendortest.ProvisionStream(ctx, js, vendor); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	feed := vendortest.NewFeed(vendor, seed)
	size := 6000
	if testing.Short() {
		size = 2000
	}
	exports := map[string]int{}
	export := func(tenant string) {
		if _, err := feed.Export(ctx, js, tenant, vendortest.ExportOptions{Size: size}); err != nil {
			t.Fatal(err)
		}
		exports[tenant]++
	}
	for _, tenant := range tenants {
		export(tenant)
	}
	db := filepath.Join(t.TempDir(), "vendor.db")
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--nats", s.ClientURL(), "--vendor", vendor, "--db", db, "--batch", "500")
		cmd.Env = append(os.Environ(), PasswordEnv+"="+vendortest.VendorPassword)
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 6
	for i := range kills {
		cmd, started := start(), time.Now()
		time.Sleep(time.Duration(50+rnd.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		pos, err := position(db)
		t.Logf("killed after %s at position %d (%v)", time.Since(started).Round(time.Millisecond), pos, err)
		export(tenants[i%len(tenants)])
	}
	if err := feed.Unlink(ctx, js, tenants[2]); err != nil {
		t.Fatal(err)
	}
	cmd := start()
	stream, err := js.Stream(ctx, "VENDOR_"+vendor)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 60*time.Second, func() error {
		if pos, err := position(db); err != nil || pos != info.State.LastSeq {
			return fmt.Errorf("position %d (%v), the stream's last message %d", pos, err, info.State.LastSeq)
		}
		for _, tenant := range tenants[:2] {
			if err := lastExport(db, tenant, fmt.Sprintf("export-%d", exports[tenant]-1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stopped by SIGTERM: %v\n%s", err, logs.String())
	}
	store, err := OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tenant := range tenants {
		sum, err := store.Summary(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sum.Checksum.String(), feed.Checksum(tenant); got != want {
			t.Errorf("tenant %s: checksum %s, want %s", tenant, got, want)
		}
		want := feed.Records(tenant)
		for _, e := range vendorkit.Entities {
			if sum.Counts[e] != len(want[e]) {
				t.Errorf("tenant %s: %d %s records, want %d", tenant, sum.Counts[e], e, len(want[e]))
			}
		}
		got := records(t, store, tenant)
		for e, recs := range want {
			for k, obj := range recs {
				if got[e][k] != string(obj) {
					t.Fatalf("tenant %s %s %s: %s, want %s", tenant, e, k, got[e][k], obj)
				}
			}
		}
	}
	if strings.Contains(logs.String(), "differs") {
		t.Errorf("a check found a difference:\n%s", logs.String())
	}
}

// position reads the position of the file at path.
func position(path string) (uint64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var seq uint64
	err = db.QueryRow(`SELECT seq FROM position`).Scan(&seq)
	return seq, err
}

// lastExport returns nil when the file's last export checked of tenant is
// exportID.
func lastExport(path, tenant, exportID string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	var got string
	if err := db.QueryRow(`SELECT export_id FROM exports WHERE tenant = ?`, tenant).Scan(&got); err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if got != exportID {
		return fmt.Errorf("tenant %s: export %s checked last, want %s", tenant, got, exportID)
	}
	return nil
}

func records(t *testing.T, s *Store, tenant string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for e, table := range tables {
		out[e] = map[string]string{}
		rows, err := s.db.Query(`SELECT key, object FROM `+table+` WHERE tenant = ?`, tenant)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, obj string
			if err := rows.Scan(&k, &obj); err != nil {
				t.Fatal(err)
			}
			out[e][k] = obj
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		_ = rows.Close()
	}
	return out
}

func TestFlags(t *testing.T) {
	env := func(string) string { return "" }
	var stderr bytes.Buffer
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--vendor is required"},
		{[]string{"--vendor", "a", "extra"}, "unexpected argument"},
		{[]string{"--vendor", "a", "--db", ""}, "--db"},
	} {
		if _, err := parse(c.args, env, &stderr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
	o, err := parse([]string{"--vendor", "a"}, func(k string) string {
		if k == PasswordEnv {
			return "pw"
		}
		return ""
	}, &stderr)
	if err != nil || o.user != "vendor-a" || o.password != "pw" {
		t.Errorf("password from the environment: %+v, %v", o, err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o, err := parse([]string{"--vendor", "a", "--password-file", pwFile}, env, &stderr); err != nil || o.password != "secret" || o.user != "vendor-a" {
		t.Errorf("--password-file: %+v, %v", o, err)
	}
	if _, err := parse([]string{"--vendor", "a", "--password-file", pwFile, "--password", "x"}, env, &stderr); err == nil {
		t.Error("--password and --password-file both given: no error")
	}
	if _, err := parse([]string{"--vendor", "a", "--password-file", pwFile + ".missing"}, env, &stderr); err == nil {
		t.Error("a missing --password-file: no error")
	}
	stderr.Reset()
	if _, err := parse([]string{"--help"}, env, &stderr); err == nil || !strings.Contains(stderr.String(), "keeps an LMS vendor's copy") {
		t.Errorf("--help: %v\n%s", err, stderr.String())
	}
}
