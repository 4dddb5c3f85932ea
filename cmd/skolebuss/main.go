// Command skolebuss is the operator CLI of skolebuss: it inspects and fetches
// PIFU exports, requests export jobs, and runs the whole pipeline for a demo
// or a benchmark. Each subcommand lives in a file of its own and registers
// itself in commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/skolebuss/skolebuss/internal/daemon"
)

// command is one subcommand: its name as typed ("pifu inspect"), a one-line
// summary for the usage text, and its entry point. run gets the arguments
// after the name; it returns errUsage (wrapped or not) for bad arguments.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error in the command line: the exit code is 2.
var errUsage = daemon.ErrUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	// Longest match first: "pifu inspect" before "pifu".
	for n := min(2, len(args)); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		if c, ok := commands[name]; ok {
			err := c.run(ctx, args[n:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "skolebuss %s: %v\n", name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "skolebuss %s: %v\n", name, err)
				return 1
			}
		}
	}
	// A group of commands named without one of them ("skolebuss pifu"):
	// list the group.
	var group []string
	for n := range commands {
		if strings.HasPrefix(n, args[0]+" ") {
			group = append(group, n)
		}
	}
	if len(group) > 0 {
		slices.Sort(group)
		help := len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help")
		switch {
		case help:
		case len(args) > 1:
			fmt.Fprintf(stderr, "skolebuss: unknown command %q\n\n", strings.Join(args, " "))
		default:
			fmt.Fprintf(stderr, "skolebuss: %q needs one of its commands\n\n", args[0])
		}
		fmt.Fprintf(stderr, "Usage: skolebuss %s <command> [flags]\n\nCommands:\n", args[0])
		for _, n := range group {
			fmt.Fprintf(stderr, "  %-20s %s\n", n, commands[n].summary)
		}
		if help {
			return 0
		}
		return 2
	}
	fmt.Fprintf(stderr, "skolebuss: unknown command %q\n\n", strings.Join(args, " "))
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "skolebuss carries the PIFU roster of Norwegian schools from Visma Flyt Skole to LMS vendors.")
	fmt.Fprintln(w, "\nUsage: skolebuss <command> [flags]   (skolebuss <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, commands[n].summary)
	}
}
