package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

func init() {
	register(command{
		name:    "pifu inspect",
		summary: "count what a PIFU export holds and report what is wrong with it",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return pifuInspect(ctx, args, os.Stdin, stdout, stderr)
		},
	})
}

const pifuInspectHelp = `Usage: skolebuss pifu inspect [--json] FILE|-

Reads a PIFU-IMS document (a file, or standard input for -) as a stream and
prints what it holds: records per entity (org, group, person, membership),
groups per group type and memberships per role, then the findings: dangling
references (a membership to a group or person that is not in the document, a
guardian link to an unknown person, an unknown parent group), duplicate keys
and missing required fields. Findings locate the record by line and column.
No personal data is printed: records are named by their sourcedid.

The 1.1, 1.2 and 1.3 namespaces (or none) and UTF-8 or ISO-8859-1 documents
are read alike.

Exit status: 0 when the document parses (findings or not), 1 when it does
not (the message names the file, line and column) or cannot be read, 2 for
bad arguments.

Flags:
`

// roleNames are the PIFU-IMS 1.3 meanings of the roletypes.
var roleNames = map[string]string{
	"01": "elev", "02": "lærer", "03": "innholdsutvikler", "04": "andre",
	"05": "skoleledelse", "06": "kontaktlærer", "07": "administrator", "08": "assistent",
}

func pifuInspect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("skolebuss pifu inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON (counts, findings) for machines")
	fs.Usage = func() {
		fmt.Fprint(stderr, pifuInspectHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one FILE (or - for standard input), got %d arguments", errUsage, fs.NArg())
	}
	name := fs.Arg(0)
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else {
		name = "<stdin>"
	}
	rep, err := pifu.Check(pifu.NewDecoder(ctxReader{ctx, in}))
	if err != nil {
		var se *pifu.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s:%d:%d: the document does not parse: %s", name, se.Line, se.Column, se.Msg)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReport(stdout, name, rep)
}

// ctxReader stops reading once ctx is done (Ctrl-C on a large file).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func printReport(w io.Writer, name string, rep pifu.Report) error {
	p := rep.Properties
	fmt.Fprintf(w, "%s: %s export from %s at %s, %d records\n\n", name, orDash(p.Type), orDash(p.Datasource), orDash(p.Datetime), rep.Records)
	var ents, types, roles []row
	for _, e := range pifu.Entities {
		ents = append(ents, row{string(e), rep.Entities[e]})
	}
	for _, k := range sortedKeys(rep.GroupTypes) {
		types = append(types, row{orDash(k), rep.GroupTypes[k]})
	}
	for _, k := range sortedKeys(rep.Roles) {
		label := orDash(k)
		if n, ok := roleNames[k]; ok {
			label = k + " " + n
		}
		roles = append(roles, row{label, rep.Roles[k]})
	}
	printTable(w, "entity", ents)
	printTable(w, "group type", types)
	printTable(w, "role", roles)
	total := 0
	for _, n := range rep.FindingsByKind {
		total += n
	}
	if total == 0 {
		_, err := fmt.Fprintln(w, "findings: none")
		return err
	}
	fmt.Fprintf(w, "findings: %d", total)
	for _, k := range sortedKeys(rep.FindingsByKind) {
		fmt.Fprintf(w, ", %s %d", k, rep.FindingsByKind[k])
	}
	fmt.Fprintln(w)
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "  %s:%d:%d: %s: %s", name, f.Line, f.Column, f.Kind, f.Detail)
		if f.Key != "" {
			fmt.Fprintf(w, " (record %s)", f.Key)
		}
		fmt.Fprintln(w)
	}
	if rep.FindingsDropped > 0 {
		fmt.Fprintf(w, "  ... and %d more (see --json for the counts)\n", rep.FindingsDropped)
	}
	return nil
}

type row struct {
	label string
	n     int
}

// printTable prints a two-column table: labels left, counts right.
func printTable(w io.Writer, title string, rows []row) {
	width := utf8.RuneCountInString(title)
	for _, r := range rows {
		width = max(width, utf8.RuneCountInString(r.label))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
	fmt.Fprintf(w, "%s  %9s\n", pad(title), "count")
	for _, r := range rows {
		fmt.Fprintf(w, "%s  %9d\n", pad(r.label), r.n)
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
