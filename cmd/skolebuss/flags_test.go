package main

import (
	"strings"
	"testing"
)

// Every duration and count of every subcommand is checked before anything
// connects or starts (no server listens at :1): exit 2, the flag named.
func TestNumberFlagsRefusedFirst(t *testing.T) {
	const nowhere = "nats://127.0.0.1:1"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--tenant", "aa750693-e3ea-441b-93fe-6a71a8371afa", "--wait", "--wait-timeout", "-1s", "--nats-url", nowhere}, "--wait-timeout -1s"},
		{[]string{"dlq", "--last", "-1", "--nats-url", nowhere}, "--last -1"},
		{[]string{"demo", "--timeout", "0s"}, "--timeout 0s"},
		{[]string{"demo", "--nats-port", "70000"}, "--nats-port 70000"},
		{[]string{"bench", "--timeout", "-5m"}, "--timeout -5m0s"},
		{[]string{"bench", "--repeat", "0"}, "--repeat 0"},
		{[]string{"bench", stageFlag, "--window", "-1", "--nats-url", nowhere, "--export-id", "e"}, "--window -1"},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want 2 naming %q", c.args, code, stderr, c.want)
		}
	}
}

// A password in a NATS URL is refused by every command that connects,
// saying how to pass it instead, and never repeated.
func TestCredentialsInNATSURLRefused(t *testing.T) {
	const url = "nats://ops:hunter2@127.0.0.1:1"
	for _, args := range [][]string{
		{"export", "--tenant", "aa750693-e3ea-441b-93fe-6a71a8371afa", "--nats-url", url},
		{"dlq", "--nats-url", url},
		{"replay", "--seq", "1", "--nats-url", url},
		{"watch", "--nats-url", url},
	} {
		code, _, stderr := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "--nats-user") || !strings.Contains(stderr, "credentials") {
			t.Errorf("%v: exit %d, %q; want 2 saying how to pass credentials", args, code, stderr)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("%v: the password is shown: %q", args, stderr)
		}
	}
}

// A tenant id on the command line is taken in either case: export gets past
// the tenant check with an upper-case id (and fails only to connect).
func TestTenantFlagInUpperCase(t *testing.T) {
	code, _, stderr := runCLI(t, "export", "--tenant", strings.ToUpper("aa750693-e3ea-441b-93fe-6a71a8371afa"), "--nats-url", "nats://127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("exit %d, %q; want 1 failing to connect", code, stderr)
	}
}
