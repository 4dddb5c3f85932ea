package demo

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/app"
	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/natsauth/natsauthtest"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// The README's `skolebuss demo --once`: two rounds around a sandbox
// generation, every tenant's canonical copy equal to its latest export, and
// each vendor's copy of each of its tenants matching its export.completed.
func TestOnceMatchesEveryTenant(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := Once(ctx, Options{SandboxAddr: "127.0.0.1:0", NATSPort: -1, Out: &out, Timeout: 2 * time.Minute,
		CredentialsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Once: %v\n%s", err, out.String())
	}
	if len(sum.Tenants) != 3 || !sum.OK() || sum.DeadLetters != 0 {
		t.Fatalf("summary %+v\n%s", sum, out.String())
	}
	for _, tr := range sum.Tenants {
		if len(tr.Rounds) != 2 || tr.Rounds[0].Generation != 0 || tr.Rounds[1].Generation != 1 {
			t.Fatalf("%s rounds %+v", tr.Name, tr.Rounds)
		}
		first, second := tr.Rounds[0].Counts, tr.Rounds[1].Counts
		total, created, changed := 0, 0, 0
		for _, e := range pifu.Entities {
			total += tr.Inspect[e]
			created += first[e].Created
			changed += second[e].Created + second[e].Updated + second[e].Deleted
			if first[e].Updated+first[e].Deleted != 0 {
				t.Fatalf("%s: a first export updated or deleted %s records", tr.Name, e)
			}
			if tr.Copy[e] != tr.Inspect[e] {
				t.Fatalf("%s: copy has %d %ss, the export %d", tr.Name, tr.Copy[e], e, tr.Inspect[e])
			}
		}
		if created == 0 || changed == 0 || total == 0 {
			t.Fatalf("%s: created %d in the first export, %d changes in the second, %d records", tr.Name, created, changed, total)
		}
	}
	// Each vendor's copy of each of its tenants, from its own stream,
	// matched; the roster-only vendor sees no contact field of a person,
	// the vendor with contact does.
	linked := map[string]int{config.DemoVendorContact: 3, config.DemoVendorRoster: 2}
	fields := map[string]map[string]bool{}
	for _, v := range sum.Vendors {
		linked[v.Vendor]--
		if !v.Matched || v.Status.LastExport != latestExport(sum, v.Tenant) || v.Status.Checksum == "" {
			t.Fatalf("vendor %s, tenant %s: %+v", v.Vendor, v.Name, v)
		}
		if v.Status.Counts[pifu.EntityPerson] == 0 {
			t.Fatalf("vendor %s, tenant %s: no persons in its copy", v.Vendor, v.Name)
		}
		if fields[v.Vendor] == nil {
			fields[v.Vendor] = map[string]bool{}
		}
		for _, f := range v.PersonFields {
			fields[v.Vendor][f] = true
		}
	}
	for v, n := range linked {
		if n != 0 {
			t.Fatalf("vendor %s: %d copies too few in the summary", v, n)
		}
	}
	for _, f := range []string{"email", "emails", "tel", "phones", "addresses"} {
		if fields[config.DemoVendorRoster][f] {
			t.Errorf("the roster-only vendor received persons' %s", f)
		}
	}
	if !fields[config.DemoVendorContact]["email"] || !fields[config.DemoVendorRoster]["name"] {
		t.Errorf("person fields: contact vendor %v, roster vendor %v", fields[config.DemoVendorContact], fields[config.DemoVendorRoster])
	}
	for _, want := range []string{"all 3 tenants match, and the copies of all 2 vendors (5 tenant copies) match.",
		"equal, record for record", "dead letters: 0", "roster-only-demo  roster ", "matches: counts and checksum"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// latestExport is the export id of tenant's latest round in sum.
func latestExport(sum Summary, tenant string) string {
	for _, tr := range sum.Tenants {
		if tr.ID == tenant && len(tr.Rounds) > 0 {
			return tr.Rounds[len(tr.Rounds)-1].ExportID
		}
	}
	return ""
}

// A second demo on the same sandbox address is refused with a clear message.
func TestBusySandboxAddressIsAClearError(t *testing.T) {
	ctx := context.Background()
	p, err := start(ctx, Options{SandboxAddr: "127.0.0.1:0", NATSPort: -1, CredentialsDir: t.TempDir()}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	_, err = Once(ctx, Options{SandboxAddr: p.opts.SandboxAddr, NATSPort: -1, CredentialsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "another demo or sandbox") {
		t.Fatalf("busy address: %v", err)
	}
}

func TestBusyNATSPortIsAClearError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	start := time.Now()
	_, err = Once(context.Background(), Options{SandboxAddr: "127.0.0.1:0", NATSHost: "127.0.0.1", NATSPort: port})
	if err == nil || !strings.Contains(err.Error(), "use --nats-port") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("busy NATS port %d: %v", port, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the error took %s; a busy port should be said at once", d)
	}
}

// The demo's server admits the vendors' users only, and each demo vendor's
// copy reads its stream as its vendor: a vendor connecting with the password
// the demo wrote (or the one its variable gives) reads its own stream and
// is refused the other vendor's, the LMS stream and the jobs; the demo's
// copies' own connections are cut the same way; a client without a user is
// refused.
func TestDemoServerEnforcesTheVendorsUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	env := map[string]string{app.VendorPasswordEnv(config.DemoVendorRoster): "pw-from-the-variable"}
	p, err := start(ctx, Options{SandboxAddr: "127.0.0.1:0", NATSPort: -1, CredentialsDir: dir,
		Getenv: func(k string) string { return env[k] }}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	url := p.bus.Server.ClientURL()

	var out bytes.Buffer
	p.printCredentials(&out)
	contact, roster := config.DemoVendorContact, config.DemoVendorRoster
	file := filepath.Join(dir, natsauth.UserName(contact)+".password")
	for _, want := range []string{url, "user vendor-" + contact + ", inbox prefix _INBOX_" + contact + ", stream VENDOR_" + contact +
		", password in " + file, "password from $" + app.VendorPasswordEnv(roster), filepath.Join(dir, "skolebuss.password")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the connect lines lack %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pw-from-the-variable") {
		t.Error("a password is printed")
	}
	pw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	v := natsauthtest.Connect(t, url, natsauth.UserName(contact), strings.TrimSpace(string(pw)), natsauth.InboxPrefix(contact))
	if _, err := v.JS.Stream(ctx, bus.VendorStream(contact)); err != nil {
		t.Errorf("vendor %s's own stream: %v", contact, err)
	}
	for _, stream := range []string{bus.VendorStream(roster), bus.StreamLMS, bus.StreamJobs} {
		if err := v.RefusedConsumer(stream); err != nil {
			t.Errorf("vendor %s, a consumer on %s: %v", contact, stream, err)
		}
	}
	if err := v.RefusedSubscribe(p.bus.Conn, "lms.>", "lms.t1.person.created"); err != nil {
		t.Errorf("vendor %s: %v", contact, err)
	}
	r := natsauthtest.Connect(t, url, natsauth.UserName(roster), "pw-from-the-variable", natsauth.InboxPrefix(roster))
	if err := r.RefusedConsumer(bus.VendorStream(contact)); err != nil {
		t.Errorf("vendor %s, a consumer on %s: %v", roster, bus.VendorStream(contact), err)
	}

	// The demo's own vendor copies: each connection reads its stream's
	// info and not the LMS stream's.
	for _, vc := range p.vendors {
		js, err := jetstream.New(vc.conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Stream(ctx, bus.VendorStream(vc.name)); err != nil {
			t.Errorf("the demo copy of %s reads its stream: %v", vc.name, err)
		}
		short, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := js.Stream(short, bus.StreamLMS); err == nil {
			t.Errorf("the demo copy of %s reads the LMS stream: it is not connected as its vendor", vc.name)
		}
		cancel()
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("a client without a user was admitted")
	}
}
