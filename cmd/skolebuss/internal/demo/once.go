package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/publisher"
	"github.com/skolebuss/skolebuss/internal/vendorcopy"
)

// Round is one export of one tenant in Once.
type Round struct {
	Generation uint64
	ExportID   string
	Counts     map[pifu.Entity]messages.Counts
	Took       time.Duration
}

// TenantResult is what Once found for one tenant.
type TenantResult struct {
	ID, Name string
	Rounds   []Round
	// Export is the object of the latest applied export; Inspect its counts
	// per entity as `skolebuss pifu inspect` finds them, Findings how many
	// findings it reported.
	Export   string
	Inspect  map[pifu.Entity]int
	Findings int
	// Copy is the vendor's copy's records per entity; Equal whether the copy
	// holds exactly the export's records, each with the same content.
	Copy    map[pifu.Entity]int
	Equal   bool
	Problem string
}

// VendorResult is what Once found for one configured vendor's copy of one
// of its tenants, built from the vendor's own stream.
type VendorResult struct {
	Vendor  string
	Profile string // the vendor's parts joined by "+"
	Tenant  string // id
	Name    string // the tenant's name
	// Status is the copy's status after the latest export: Matched says
	// whether it had exactly the counts and checksum of the vendor's
	// export.completed of that export.
	Status vendorcopy.Status
	// Export is the export the vendor's copy should have completed last.
	Export string
	// Matched is Status.Matched for that export; Problem says why not.
	Matched bool
	Problem string
	// PersonFields are the fields found in the copy's person records,
	// sorted: what the vendor's profile lets it see of a person.
	PersonFields []string
}

// Summary is the outcome of Once.
type Summary struct {
	Tenants     []TenantResult
	Vendors     []VendorResult
	DeadLetters uint64
}

// OK reports whether every tenant's canonical copy equals its latest
// export and every vendor's copy matched its latest export.completed.
func (s Summary) OK() bool {
	for _, t := range s.Tenants {
		if !t.Equal {
			return false
		}
	}
	for _, v := range s.Vendors {
		if !v.Matched {
			return false
		}
	}
	return len(s.Tenants) > 0
}

// ErrMismatch is returned by Once when a copy differs from what it should
// hold.
var ErrMismatch = errors.New("a demo copy differs from what it should hold")

// Once exports every demo tenant, advances the sandbox one generation,
// exports again, then checks that the canonical copy of each tenant equals
// the latest export record for record, and that each configured vendor's
// copy of each of its tenants, built from the vendor's own stream, matched
// the counts and checksum of the vendor's latest export.completed. It
// prints the summary to Out and returns ErrMismatch if any copy differs.
func Once(ctx context.Context, opts Options) (Summary, error) {
	p, err := start(ctx, opts, false)
	if err != nil {
		return Summary{}, err
	}
	defer p.close()
	o := p.opts
	fmt.Fprintf(o.Out, "skolebuss demo --once: sandbox on http://%s, NATS JetStream on nats://%s, %d tenants\n\n",
		o.SandboxAddr, p.bus.Conn.ConnectedAddr(), len(p.cfg.Tenants))

	results := make([]TenantResult, len(p.cfg.Tenants))
	for i, t := range p.cfg.Tenants {
		results[i] = TenantResult{ID: t.ID, Name: t.Name}
	}
	run := randomID()
	for round := 0; round < 2; round++ {
		if round == 1 {
			for _, t := range p.cfg.Tenants {
				if _, err := p.sandbox.Advance(t.ID); err != nil {
					return Summary{}, fmt.Errorf("advance %s: %w", t.Name, err)
				}
			}
		}
		if err := p.exportAll(ctx, run, round, results); err != nil {
			return Summary{Tenants: results}, err
		}
	}

	for i := range results {
		p.verify(ctx, &results[i])
	}
	sum := Summary{Tenants: results, Vendors: p.verifyVendors(results), DeadLetters: p.dlqState(ctx).Msgs}
	printSummary(o.Out, sum)
	if !sum.OK() {
		return sum, ErrMismatch
	}
	return sum, nil
}

// exportAll requests an export of every tenant and waits until the vendor
// has applied each, or a tenant's export ends in the dead-letter stream.
func (p *pipeline) exportAll(ctx context.Context, run string, round int, results []TenantResult) error {
	o := p.opts
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	started := time.Now()
	dlqBefore := p.dlqState(ctx).LastSeq
	ids := make([]string, len(results))
	for i, r := range results {
		gen, err := p.sandbox.Generation(r.ID)
		if err != nil {
			return err
		}
		ids[i] = fmt.Sprintf("demo-%s-t%d-g%d", run, i, gen)
		res, err := p.req.RequestNow(rctx, r.ID, ids[i])
		if err != nil {
			return fmt.Errorf("request an export of %s: %w", r.Name, err)
		}
		results[i].Rounds = append(results[i].Rounds, Round{Generation: gen, ExportID: res.Job.JobID})
		ids[i] = res.Job.JobID
	}
	for i, r := range results {
		for {
			wctx, wcancel := context.WithTimeout(rctx, time.Second)
			_, err := p.vendor.WaitFor(wctx, r.ID, ids[i])
			wcancel()
			if err == nil {
				break
			}
			if dl := p.lastDeadLetter(ctx, r.ID, dlqBefore); dl != "" {
				return fmt.Errorf("export %s of %s did not arrive: it was dead-lettered: %s", ids[i], r.Name, dl)
			}
			if rctx.Err() != nil {
				return fmt.Errorf("export %s of %s did not arrive within %s: %w", ids[i], r.Name, o.Timeout, rctx.Err())
			}
		}
		last := &results[i].Rounds[len(results[i].Rounds)-1]
		last.Took = time.Since(started)
		last.Counts = p.completedCounts(ctx, r.ID)
	}
	// Each vendor receives the export of each of its tenants once the
	// canonical one is whole.
	for _, v := range p.vendors {
		for _, tenant := range v.tenants {
			i := slices.IndexFunc(results, func(r TenantResult) bool { return r.ID == tenant })
			if i < 0 {
				continue // a tenant the demo does not export
			}
			if _, err := v.copy.WaitFor(rctx, tenant, ids[i]); err != nil {
				return fmt.Errorf("export %s of %s did not reach vendor %s within %s: %w", ids[i], results[i].Name, v.name, o.Timeout, err)
			}
		}
	}
	return nil
}

// verifyVendors reads each vendor's copy of each of its tenants after the
// tenant's latest export.
func (p *pipeline) verifyVendors(results []TenantResult) []VendorResult {
	var out []VendorResult
	for _, v := range p.vendors {
		for _, tenant := range v.tenants {
			r := VendorResult{Vendor: v.name, Profile: v.profile, Tenant: tenant, Name: p.names[tenant]}
			if i := slices.IndexFunc(results, func(r TenantResult) bool { return r.ID == tenant }); i >= 0 && len(results[i].Rounds) > 0 {
				r.Export = results[i].Rounds[len(results[i].Rounds)-1].ExportID
			}
			r.Status, _ = v.copy.Status(tenant)
			r.PersonFields = personFields(v.copy.Copy(tenant)[pifu.EntityPerson])
			switch {
			case r.Status.LastExport != r.Export:
				r.Problem = fmt.Sprintf("its last export is %q, want %q", r.Status.LastExport, r.Export)
			case !r.Status.Matched:
				r.Problem = r.Status.Mismatch
			default:
				r.Matched = true
			}
			out = append(out, r)
		}
	}
	return out
}

// completedCounts reads the counts of the tenant's last export.completed.
func (p *pipeline) completedCounts(ctx context.Context, tenant string) map[pifu.Entity]messages.Counts {
	subj, err := messages.BoundarySubject(tenant, messages.PhaseCompleted)
	if err != nil {
		return nil
	}
	s, err := p.bus.JS.Stream(ctx, bus.StreamLMS)
	if err != nil {
		return nil
	}
	raw, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		return nil
	}
	b, err := messages.Decode[messages.Boundary](&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		return nil
	}
	return b.Counts
}

// verify compares the vendor's copy of r's tenant with the latest applied
// export, parsed afresh.
func (p *pipeline) verify(ctx context.Context, r *TenantResult) {
	// Without a deadline of its own, an object's read ends at the
	// JetStream context's default timeout (see publisher.ObjectReadTimeout).
	ctx, cancel := context.WithTimeout(ctx, publisher.ObjectReadTimeout)
	defer cancel()
	st, err := publisher.LoadState(ctx, p.bus.Stores.Snapshots, r.ID)
	if err != nil || st.ExportObject == "" {
		r.Problem = fmt.Sprintf("no applied export found: %v", err)
		return
	}
	r.Export = st.ExportObject
	open := func() (io.ReadCloser, error) { return p.bus.Stores.Exports.Get(ctx, st.ExportObject) }

	rc, err := open()
	if err != nil {
		r.Problem = fmt.Sprintf("read export %s: %v", st.ExportObject, err)
		return
	}
	report, err := pifu.Check(pifu.NewDecoder(rc))
	rc.Close()
	if err != nil {
		r.Problem = fmt.Sprintf("inspect export %s: %v", st.ExportObject, err)
		return
	}
	r.Inspect, r.Findings = report.Entities, len(report.Findings)

	copy := p.vendor.Copy(r.ID)
	r.Copy = map[pifu.Entity]int{}
	for e, recs := range copy {
		r.Copy[e] = len(recs)
	}
	rc, err = open()
	if err != nil {
		r.Problem = fmt.Sprintf("read export %s: %v", st.ExportObject, err)
		return
	}
	defer rc.Close()
	dec := pifu.NewDecoder(rc)
	seen := map[pifu.Entity]map[string]bool{}
	var diffs []string
	for len(diffs) < 5 {
		rec, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.Problem = fmt.Sprintf("parse export %s: %v", st.ExportObject, err)
			return
		}
		e, key := rec.Entity(), rec.Key()
		if seen[e] == nil {
			seen[e] = map[string]bool{}
		}
		if seen[e][key] {
			continue // a duplicate key: the first one is the record
		}
		seen[e][key] = true
		want, err := json.Marshal(rec.Object())
		if err != nil {
			r.Problem = err.Error()
			return
		}
		got, ok := copy[e][key]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s missing from the copy", e, key))
		case !bytes.Equal(got, want):
			diffs = append(diffs, fmt.Sprintf("%s %s differs", e, key))
		}
	}
	for e, recs := range copy {
		for key := range recs {
			if !seen[e][key] && len(diffs) < 5 {
				diffs = append(diffs, fmt.Sprintf("%s %s is in the copy but not in the export", e, key))
			}
		}
	}
	for _, e := range pifu.Entities {
		if r.Copy[e] != r.Inspect[e] && len(diffs) == 0 {
			diffs = append(diffs, fmt.Sprintf("%d %ss in the copy, %d in the export", r.Copy[e], e, r.Inspect[e]))
		}
	}
	if len(diffs) > 0 {
		r.Problem = strings.Join(diffs, "; ")
		return
	}
	r.Equal = true
}

// dlqState is the dead-letter stream's state: how many dead letters it
// holds and its last sequence (zero where the stream cannot be read).
func (p *pipeline) dlqState(ctx context.Context) jetstream.StreamState {
	s, err := p.bus.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return jetstream.StreamState{}
	}
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}
	}
	return info.State
}

// lastDeadLetter describes the tenant's last dead letter of any stage stored
// after sequence after, or "".
func (p *pipeline) lastDeadLetter(ctx context.Context, tenant string, after uint64) string {
	s, err := p.bus.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return ""
	}
	for _, stage := range []string{"publish", "fetch"} {
		subj, err := messages.DLQSubject(stage, tenant)
		if err != nil {
			continue
		}
		raw, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) || err != nil || raw.Sequence <= after {
			continue
		}
		dl, err := messages.Decode[messages.DeadLetter](&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err == nil {
			return fmt.Sprintf("%s: %s (%s): %s (replay with: skolebuss replay --seq %d)", dl.Stage, dl.Reason, dl.Class, dl.Error, raw.Sequence)
		}
	}
	return ""
}

func printSummary(out io.Writer, s Summary) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tenant\tgeneration\texport\tcreated\tupdated\tdeleted\tunchanged\tdone after")
	for _, t := range s.Tenants {
		for _, r := range t.Rounds {
			var c messages.Counts
			for _, e := range pifu.Entities {
				x := r.Counts[e]
				c.Created, c.Updated, c.Deleted, c.Unchanged = c.Created+x.Created, c.Updated+x.Updated, c.Deleted+x.Deleted, c.Unchanged+x.Unchanged
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", t.Name, r.Generation, r.ExportID, c.Created, c.Updated, c.Deleted, c.Unchanged, r.Took.Round(time.Millisecond))
		}
	}
	tw.Flush()
	fmt.Fprintln(out, "\nThe canonical copy against the latest export of each tenant (records per entity as `skolebuss pifu inspect` counts them):")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "tenant\torgs\tgroups\tpersons\tmemberships\tfindings\tcanonical copy")
	sorted := append([]TenantResult(nil), s.Tenants...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, t := range sorted {
		verdict := "equal, record for record"
		if !t.Equal {
			verdict = "DIFFERS: " + t.Problem
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Name, t.Inspect[pifu.EntityOrg], t.Inspect[pifu.EntityGroup],
			t.Inspect[pifu.EntityPerson], t.Inspect[pifu.EntityMembership], t.Findings, verdict)
	}
	tw.Flush()
	if len(s.Vendors) > 0 {
		fmt.Fprintln(out, "\nEach vendor's copy, built from its own stream (its tenants only, cut to its profile), against its export.completed:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "vendor\tprofile\ttenant\torgs\tgroups\tpersons\tmemberships\tchecksum\tvendor's copy")
		for _, v := range s.Vendors {
			verdict := "matches: counts and checksum"
			if !v.Matched {
				verdict = "DIFFERS: " + v.Problem
			}
			c := v.Status.Counts
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", v.Vendor, v.Profile, v.Name, c[pifu.EntityOrg], c[pifu.EntityGroup],
				c[pifu.EntityPerson], c[pifu.EntityMembership], v.Status.Checksum, verdict)
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\ndead letters: %d\n", s.DeadLetters)
	if s.OK() {
		fmt.Fprintf(out, "all %d tenants match", len(s.Tenants))
		if n := vendorCount(s.Vendors); n > 0 {
			fmt.Fprintf(out, ", and the copies of all %d vendors (%d tenant copies) match", n, len(s.Vendors))
		}
		fmt.Fprintln(out, ".")
	} else {
		fmt.Fprintln(out, "MISMATCH: see above.")
	}
}

// personFields are the top-level fields of the person records, sorted.
func personFields(persons map[string]json.RawMessage) []string {
	seen := map[string]bool{}
	for _, obj := range persons {
		var fields map[string]json.RawMessage
		if json.Unmarshal(obj, &fields) == nil {
			for f := range fields {
				seen[f] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// vendorCount is the number of distinct vendors in vs.
func vendorCount(vs []VendorResult) int {
	seen := map[string]bool{}
	for _, v := range vs {
		seen[v.Vendor] = true
	}
	return len(seen)
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
