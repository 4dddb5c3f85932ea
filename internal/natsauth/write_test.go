package natsauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/natsauth/natsauthtest"
)

// bcryptB is the bcrypt hash of "pw-vendor-b" (cost 4, for speed).
const bcryptB = "$2a$04$IbHQpbEpwgkKM0kKIdo6pulvWpiQjxWAsJjJ/IaGr/437yHqpOKg6"

// testEnv holds the passwords the test configurations name by variable.
var testEnv = map[string]string{
	"ADMIN_PASSWORD":    "pw-admin",
	"VENDOR_A_PASSWORD": "pw-vendor-a",
}

// writeConf writes users.conf with Write and an account file including it,
// as deploy/nats does, into a temporary directory, sets the variables the
// users name, and returns the account file's path.
func writeConf(t *testing.T, vendors []Vendor, others ...User) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	if err := Write(&b, vendors, others...); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.conf"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "accounts {\n  SKOLEBUSS {\n    jetstream: enabled\n    include ./users.conf\n  }\n}\n"
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range testEnv {
		t.Setenv(k, v)
	}
	return path
}

var (
	admin    = User{Name: "admin", Password: Password{Env: "ADMIN_PASSWORD"}, Comment: "Everything, for the tests.\nMakes the streams."}
	vendorsA = []Vendor{
		{Name: "b", Password: Password{Bcrypt: bcryptB}},
		{Name: "a", Password: Password{Env: "VENDOR_A_PASSWORD"}},
	}
)

func parsedUser(t *testing.T, o *server.Options, name string) *server.User {
	t.Helper()
	for _, u := range o.Users {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("no user %s in %v", name, o.Users)
	return nil
}

// nats-server's own parser reads what Write writes: every user in the
// account, the passwords from the variable and as the hash, and each
// vendor's permissions exactly as VendorPermissions has them.
func TestWriteParsesWithNATSServer(t *testing.T) {
	path := writeConf(t, vendorsA, admin)
	o, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the written configuration: %v", err)
	}
	if len(o.Users) != 3 {
		t.Fatalf("%d users, want 3", len(o.Users))
	}
	for _, u := range o.Users {
		if u.Account == nil || u.Account.Name != "SKOLEBUSS" {
			t.Errorf("user %s is not in the account", u.Username)
		}
	}
	if u := parsedUser(t, o, "admin"); u.Password != "pw-admin" || u.Permissions != nil {
		t.Errorf("admin: password %q, permissions %+v", u.Password, u.Permissions)
	}
	if u := parsedUser(t, o, "vendor-a"); u.Password != "pw-vendor-a" {
		t.Errorf("vendor-a's password is %q, not the variable's", u.Password)
	}
	if u := parsedUser(t, o, "vendor-b"); u.Password != bcryptB {
		t.Errorf("vendor-b's password is %q, not the hash", u.Password)
	}
	for _, v := range []string{"a", "b"} {
		u := parsedUser(t, o, UserName(v))
		natsauthtest.SamePermissions(t, u.Username, u.Permissions, VendorPermissions(v).Server())
	}
}

// The file names no password of its own, and is the same whatever the
// order of the vendors.
func TestWriteIsStableAndHasNoPlainPassword(t *testing.T) {
	var one, two bytes.Buffer
	if err := Write(&one, vendorsA, admin); err != nil {
		t.Fatal(err)
	}
	if err := Write(&two, []Vendor{vendorsA[1], vendorsA[0]}, admin); err != nil {
		t.Fatal(err)
	}
	if one.String() != two.String() {
		t.Errorf("the order of the vendors changes the file:\n%s\n---\n%s", one.String(), two.String())
	}
	for line := range strings.SplitSeq(one.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "password" {
			if v = strings.Trim(strings.TrimSpace(v), `"`); !strings.HasPrefix(v, "$") {
				t.Errorf("a plain password: %s", line)
			}
		}
	}
	if a, b := strings.Index(one.String(), "vendor-a"), strings.Index(one.String(), "vendor-b"); a < 0 || b < a {
		t.Errorf("vendors not ordered by name")
	}
}

func TestWriteRefuses(t *testing.T) {
	env := Password{Env: "X"}
	for _, c := range []struct {
		name    string
		vendors []Vendor
		others  []User
	}{
		{"empty vendor name", []Vendor{{Name: "", Password: env}}, nil},
		{"a dot", []Vendor{{Name: "a.b", Password: env}}, nil},
		{"a wildcard", []Vendor{{Name: "a*", Password: env}}, nil},
		{"an uppercase letter", []Vendor{{Name: "Acme", Password: env}}, nil},
		{"33 bytes", []Vendor{{Name: strings.Repeat("a", 33), Password: env}}, nil},
		{"a vendor twice", []Vendor{{Name: "a", Password: env}, {Name: "a", Password: env}}, nil},
		{"no password", []Vendor{{Name: "a"}}, nil},
		{"both sources", []Vendor{{Name: "a", Password: Password{Env: "X", Bcrypt: bcryptB}}}, nil},
		{"a variable with a dash", []Vendor{{Name: "a", Password: Password{Env: "A-B"}}}, nil},
		{"a plain password as the hash", []Vendor{{Name: "a", Password: Password{Bcrypt: "secret"}}}, nil},
		{"a user's name with a quote", nil, []User{{Name: `x"y`, Password: env}}},
		{"a user's subject with white space", nil, []User{{Name: "x", Password: env,
			Permissions: &Permissions{Publish: Rules{Allow: []string{"a b"}}}}}},
		{"a user twice", nil, []User{{Name: "x", Password: env}, {Name: "x", Password: env}}},
		{"a user with a vendor's name", []Vendor{{Name: "a", Password: env}}, []User{{Name: "vendor-a", Password: env}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Write(&b, c.vendors, c.others...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Write: %v, want ErrInvalid", err)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes", b.Len())
			}
		})
	}
	// The longest and the oddest valid names pass.
	var b bytes.Buffer
	if err := Write(&b, []Vendor{{Name: strings.Repeat("z", 32), Password: env}, {Name: "lms-1_x", Password: env}}); err != nil {
		t.Errorf("valid names: %v", err)
	}
}

// What Write writes and what Server gives the embedded server are the same
// permissions to nats-server: a vendor's, and a responder's with
// allow_responses.
func TestServerPermissionsAreWhatTheFileGives(t *testing.T) {
	responder := User{Name: "responder", Password: Password{Env: "ADMIN_PASSWORD"}, Permissions: &Permissions{
		Publish: Rules{Allow: []string{"x.>"}}, Subscribe: Rules{Allow: []string{"req.*"}}, Responses: true}}
	o, err := server.ProcessConfigFile(writeConf(t, vendorsA, responder))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]*server.Permissions{
		"vendor-a":  VendorPermissions("a").Server(),
		"responder": responder.Permissions.Server(),
	} {
		got := parsedUser(t, o, name).Permissions
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the file gives %+v, Server %+v", name, got, want)
		}
	}
	if parsedUser(t, o, "responder").Permissions.Response == nil {
		t.Error("allow_responses was not written")
	}
}
