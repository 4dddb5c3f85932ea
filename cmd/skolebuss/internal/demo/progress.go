package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// progress shows what the demo vendor has applied, per tenant: as a table
// redrawn in place on a terminal, or as a line per export started and
// completed otherwise. Its methods are safe for concurrent use.
type progress struct {
	mu     sync.Mutex
	out    io.Writer
	live   bool
	width  int // of the terminal: live lines are cut to it, so redrawing works
	names  map[string]string
	status map[string]vendorcopy.Status
	// vendors holds each configured vendor's copies: vendor -> tenant ->
	// status, the vendors in the order they were first seen.
	vendors     map[string]map[string]vendorcopy.Status
	vendorOrder []string
	drawn       int // lines of the last table drawn
	// quota reads each application's quota use, a line each (nil: none);
	// quotaLast is what it read last.
	quota     func(context.Context) []string
	quotaLast []string
}

func newProgress(out io.Writer, live bool, width int, names map[string]string) *progress {
	return &progress{out: out, live: live, width: width, names: names, status: map[string]vendorcopy.Status{},
		vendors: map[string]map[string]vendorcopy.Status{}}
}

// vendorUpdate is the progress callback of vendor's copy: a line per export
// the vendor completed, or its row under the table.
func (p *progress) vendorUpdate(vendor string) func(vendorcopy.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.vendors[vendor]; !ok {
		p.vendors[vendor] = map[string]vendorcopy.Status{}
		p.vendorOrder = append(p.vendorOrder, vendor)
	}
	return func(s vendorcopy.Status) {
		p.mu.Lock()
		defer p.mu.Unlock()
		prev, seen := p.vendors[vendor][s.Tenant]
		p.vendors[vendor][s.Tenant] = s
		if p.live || s.LastExport == "" || (seen && prev.LastExport == s.LastExport) {
			return
		}
		fmt.Fprintf(p.out, "%s  %-20s vendor %s received export %s: %s; its copy %s\n", clock(), p.name(s.Tenant), vendor,
			s.LastExport, counts(s.Counts), verdict(s))
	}
}

// update is the vendor's progress callback: it must return quickly.
func (p *progress) update(s vendorcopy.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, seen := p.status[s.Tenant]
	p.status[s.Tenant] = s
	if p.live {
		return
	}
	switch {
	case s.Current != "" && (!seen || prev.Current != s.Current) && s.Current != s.LastExport:
		fmt.Fprintf(p.out, "%s  %-20s export %s started: %d changes to apply\n", clock(), p.name(s.Tenant), s.Current, s.Expected)
	case s.LastExport != "" && (!seen || prev.LastExport != s.LastExport):
		fmt.Fprintf(p.out, "%s  %-20s export %s completed: %s; copy %s\n", clock(), p.name(s.Tenant), s.LastExport, counts(s.Counts), verdict(s))
	}
}

// loop redraws the table every half second until ctx ends (on a terminal),
// with the quota use read every quotaEvery; printing lines, it prints the
// quota use when it changed.
func (p *progress) loop(ctx context.Context) {
	tick := 500 * time.Millisecond
	if !p.live {
		tick = quotaEvery
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var lastRead time.Time
	for {
		if p.quota != nil && time.Since(lastRead) >= quotaEvery {
			lastRead = time.Now()
			p.setQuota(p.quota(ctx))
		}
		if p.live {
			p.draw()
		}
		select {
		case <-ctx.Done():
			if p.live {
				p.draw()
			}
			return
		case <-t.C:
		}
	}
}

// setQuota keeps lines for the table, or prints them if they changed.
func (p *progress) setQuota(lines []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := strings.Join(lines, "\n") != strings.Join(p.quotaLast, "\n")
	p.quotaLast = lines
	if p.live || !changed {
		return
	}
	for _, l := range lines {
		fmt.Fprintf(p.out, "%s  %s\n", clock(), l)
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	lines := []string{fmt.Sprintf("%-20s %-8s %15s %7s  %-24s  %s", "tenant", "exports", "applied", "records", "vendor's copy", "export")}
	for _, id := range p.tenants() {
		s, ok := p.status[id]
		if !ok {
			lines = append(lines, fmt.Sprintf("%-20s waiting for the first export", p.name(id)))
			continue
		}
		export := s.Current
		if export == "" {
			export = s.LastExport
		}
		records := 0
		for _, n := range s.Counts {
			records += n
		}
		lines = append(lines, fmt.Sprintf("%-20s %-8d %7d/%-7d %7d  %-24s  %s", p.name(id), s.Exports, s.InExport, s.Expected, records, short(s), export))
	}
	for _, v := range p.vendorOrder {
		var parts []string
		for _, id := range p.tenants() {
			if s, ok := p.vendors[v][id]; ok {
				parts = append(parts, p.name(id)+" "+short(s))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "waiting for its first export")
		}
		lines = append(lines, fmt.Sprintf("vendor %s: %s", v, strings.Join(parts, ", ")))
	}
	lines = append(lines, p.quotaLast...)
	for _, l := range lines {
		if r := []rune(l); p.width > 1 && len(r) >= p.width {
			l = string(r[:p.width-1])
		}
		b.WriteString("\x1b[2K")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	p.drawn = len(lines)
	io.WriteString(p.out, b.String())
}

func (p *progress) tenants() []string {
	ids := make([]string, 0, len(p.names))
	for id := range p.names {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return p.names[ids[i]] < p.names[ids[j]] })
	return ids
}

func (p *progress) name(id string) string {
	if n, ok := p.names[id]; ok {
		return n
	}
	return id
}

func verdict(s vendorcopy.Status) string {
	switch {
	case s.LastExport == "":
		return "applying"
	case s.Current != "" && s.Current != s.LastExport:
		return "applying"
	case s.Matched:
		return "matches export.completed"
	default:
		return "MISMATCH: " + s.Mismatch
	}
}

// short is verdict with "matches" for a match, for the table.
func short(s vendorcopy.Status) string {
	v := verdict(s)
	if s.Matched && v != "applying" {
		v = "matches"
	}
	return v
}

func counts(c map[pifu.Entity]int) string {
	parts := make([]string, 0, len(pifu.Entities))
	for _, e := range pifu.Entities {
		parts = append(parts, fmt.Sprintf("%d %ss", c[e], e))
	}
	return strings.Join(parts, ", ")
}

func clock() string { return time.Now().Format("15:04:05") }
