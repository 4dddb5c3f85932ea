package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCommandGroup(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"pifu", "--help"}, 0, "pifu inspect"},
		{[]string{"pifu"}, 2, `"pifu" needs one of its commands`},
		{[]string{"pifu", "bogus"}, 2, `unknown command "pifu bogus"`},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), c.args, &out, &errs)
		if code != c.code || !strings.Contains(errs.String(), c.want) {
			t.Errorf("skolebuss %v: exit %d %q; want %d and %q", c.args, code, errs.String(), c.code, c.want)
		}
		if c.args[0] == "pifu" && !strings.Contains(errs.String(), "pifu fetch") {
			t.Errorf("skolebuss %v does not list pifu fetch: %q", c.args, errs.String())
		}
	}
}
