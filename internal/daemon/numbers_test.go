package daemon

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestNumberFlagsChecked(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Duration("drain", 30*time.Second, "")
		fs.Duration("ack-wait", 30*time.Second, "")
		fs.Int("concurrency", 4, "")
		fs.Int("last", 50, "")
		fs.Int("port", 4222, "")
		fs.String("name", "", "")
		return fs
	}
	ranges := []Range{{Flag: "last", Min: 0, Max: 1000}, {Flag: "port", Min: -1, Max: 65535}}
	for _, c := range []struct {
		args []string
		want string // "" for accepted
	}{
		{nil, ""},
		{[]string{"--drain", "1ms", "--concurrency", "1", "--last", "0", "--port", "-1"}, ""},
		{[]string{"--drain", "-1s"}, "--drain -1s: want a duration from 1ns to 720h0m0s"},
		{[]string{"--ack-wait", "0s"}, "--ack-wait 0s: want a duration from 1ns"},
		{[]string{"--ack-wait", "8760h"}, "--ack-wait 8760h0m0s: want a duration from 1ns to 720h0m0s"},
		{[]string{"--concurrency", "-3"}, "--concurrency -3: want a number from 1 to 1048576"},
		{[]string{"--concurrency", "0"}, "--concurrency 0: want a number from 1"},
		{[]string{"--last", "-1"}, "--last -1: want a number from 0 to 1000"},
		{[]string{"--port", "70000"}, "--port 70000: want a number from -1 to 65535"},
	} {
		err := ParseFlags(newFS(), c.args, ranges...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (!errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v; want a usage error with %q", c.args, err, c.want)
		}
	}
	// A range for a flag that does not exist is a mistake in the program.
	if err := ParseFlags(newFS(), nil, Range{Flag: "lasst"}); err == nil || !strings.Contains(err.Error(), `"lasst"`) {
		t.Errorf("range of an unknown flag: %v", err)
	}
}
