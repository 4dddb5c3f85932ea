package fanout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/rostergen"
	"github.com/skolebuss/skolebuss/internal/snapshot"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// findingsExports are a generated document with memberships that are not
// whole added, then the same without a member of staff: its memberships
// lose their person.
func findingsExports(t *testing.T, tenant string) [][]byte {
	t.Helper()
	sizes, _ := rostergen.Preset("tiny")
	m, err := rostergen.New(rostergen.Spec{TenantID: tenant, Name: "Kommune", Seed: 3, Sizes: sizes})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteExport(context.Background(), &buf, 0); err != nil {
		t.Fatal(err)
	}
	doc := buf.Bytes()
	src := regexp.MustCompile(`<datasource>([^<]+)</datasource>`).FindSubmatch(doc)[1]
	ms := func(group, member, idtype string) string {
		return "<membership><sourcedid><source>" + string(src) + "</source><id>" + group + "</id></sourcedid><member><sourcedid><source>" +
			string(src) + "</source><id>" + member + "</id></sourcedid><idtype>" + idtype +
			`</idtype><role roletype="01"><status>1</status></role></member></membership>` + "\n"
	}
	end := bytes.LastIndex(doc, []byte("</enterprise>"))
	a := slices.Concat(doc[:end], []byte(ms("GONE-GROUP", "elev-1", "1")+ms("SKOLE-1", "elev-gone", "1")+ms("SKOLE-1", "TRINN-1-1", "2")), doc[end:])
	loc := regexp.MustCompile(`<person>(?:[^<]|<[^/]|</[^p]|</p[^e])*?<id>ansatt-1</id></sourcedid>.*?</person>\n?`).FindIndex(a)
	if loc == nil {
		t.Fatal("no ansatt-1 in the document")
	}
	return [][]byte{a, slices.Concat(a[:loc[0]], a[loc[1]:])}
}

// TestVendorsAreToldTheFindings: the canonical boundaries' findings reach
// every vendor's boundaries, and the marked memberships every profile's
// events, while each vendor's copy matches the checksum it is given.
func TestVendorsAreToldTheFindings(t *testing.T) {
	ctx := context.Background()
	b := bustest.Open(t)
	prof := func(parts ...string) projection.Profile {
		p, err := projection.ParseProfile(parts...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	vendors := []fanout.Vendor{
		{Name: "roster-only", Tenants: []string{tenantA}, Profile: prof()},
		{Name: "everything", Tenants: []string{tenantA}, Profile: prof("contact", "demographics", "guardians", "national_id")},
	}
	store, err := bus.ProvisionVendors(ctx, b.JS, bus.ProvisionConfig{}, []string{vendors[0].Name, vendors[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(v messages.Codable) {
		m, err := messages.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// The canonical exports, published as the publisher does.
	docs := findingsExports(t, tenantA)
	var prev *snapshot.Snapshot
	var findings []map[string]int
	for g, doc := range docs {
		id := exportID(tenantA, g)
		in := diff.Input{Tenant: tenantA, ExportID: id, Prev: prev, Next: pifu.NewDecoder(bytes.NewReader(doc))}
		if g > 0 {
			in.OpenPrev = func(context.Context) (diff.RecordReader, io.Closer, error) {
				return pifu.NewDecoder(bytes.NewReader(docs[g-1])), io.NopCloser(nil), nil
			}
		}
		var evs []messages.Event
		res, err := diff.Run(ctx, diff.Config{SpoolDir: t.TempDir(), DeleteThreshold: 1}, in, func(_ context.Context, c diff.Change) error {
			evs = append(evs, event(tenantA, id, c))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		f := map[string]int{messages.FindingDanglingMembership: res.Findings.DanglingMemberships, messages.FindingGroupMember: res.Findings.GroupMembers}
		if f[messages.FindingDanglingMembership] < 2 || f[messages.FindingGroupMember] != 1 {
			t.Fatalf("export %d: findings %v", g, f)
		}
		findings = append(findings, f)
		counts := map[pifu.Entity]messages.Counts{}
		for e, c := range res.Counts {
			counts[e] = messages.Counts{Created: c.Created, Updated: c.Updated, Deleted: c.Deleted, Unchanged: c.Unchanged, Total: res.Snapshot.Count(e)}
		}
		publish(messages.Boundary{ID: messages.BoundaryID(tenantA, id, messages.PhaseStarted), Tenant: tenantA, ExportID: id,
			Phase: messages.PhaseStarted, Time: at, Counts: counts, Findings: f})
		for _, ev := range evs {
			publish(ev)
		}
		publish(messages.Boundary{ID: messages.BoundaryID(tenantA, id, messages.PhaseCompleted), Tenant: tenantA, ExportID: id,
			Phase: messages.PhaseCompleted, Time: at, Counts: counts, Findings: f, Checksum: messages.FormatChecksum(res.Snapshot.Checksum())})
		prev = res.Snapshot
	}

	f, err := fanout.New(fanout.Config{Vendors: vendors, Poll: 100 * time.Millisecond, Retry: 100 * time.Millisecond},
		fanout.Deps{Conn: b.Conn, JS: b.JS, Store: store, Snapshots: b.Stores.Snapshots, Exports: b.Stores.Exports})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fanout.Run: %v", err)
		}
	}()
	waitfor.Condition(t, 60*time.Second, func() error {
		for _, v := range vendors {
			n := 0
			for _, m := range bustest.Msgs(t, b.JS, bus.VendorStream(v.Name)) {
				if strings.HasSuffix(m.Subject, ".export.completed") {
					n++
				}
			}
			if n != len(docs) {
				return fmt.Errorf("vendor %s: %d of %d exports delivered", v.Name, n, len(docs))
			}
		}
		return nil
	})

	for _, v := range vendors {
		held := map[uint64][]byte{}
		boundaries, marked, updatedMarked := 0, 0, 0
		for _, m := range bustest.Msgs(t, b.JS, bus.VendorStream(v.Name)) {
			nm := bustest.NATSMsg(m)
			if strings.Contains(m.Subject, ".export.") {
				bd, err := messages.Decode[messages.Boundary](nm)
				if err != nil {
					t.Fatal(err)
				}
				g := slices.Index([]string{exportID(tenantA, 0), exportID(tenantA, 1)}, bd.ExportID)
				if g < 0 || !maps.Equal(bd.Findings, findings[g]) {
					t.Errorf("%s: export.%s of %s: findings %v, want %v", v.Name, bd.Phase, bd.ExportID, bd.Findings, findings[max(g, 0)])
				}
				boundaries++
				if bd.Phase == messages.PhaseCompleted {
					var sum snapshot.Checksum
					for k, o := range held {
						sum.Add(k, xxhash.Sum64(o))
					}
					if bd.Checksum != messages.FormatChecksum(sum) {
						t.Errorf("%s: export %s announces %s, the copy is %s", v.Name, bd.ExportID, bd.Checksum, sum)
					}
				}
				continue
			}
			ev, err := messages.Decode[messages.Event](nm)
			if err != nil {
				t.Fatal(err)
			}
			k := snapshot.KeyHash(ev.Entity, ev.Key)
			if ev.Op == messages.OpDeleted {
				delete(held, k)
				continue
			}
			held[k] = bytes.Clone(ev.Object)
			if ev.Entity != pifu.EntityMembership {
				continue
			}
			var obj struct {
				Incomplete []string `json:"incomplete"`
			}
			if err := json.Unmarshal(ev.Object, &obj); err != nil {
				t.Fatal(err)
			}
			if obj.Incomplete != nil {
				marked++
				if ev.Op == messages.OpUpdated && slices.Contains(obj.Incomplete, pifu.IncompletePerson) {
					updatedMarked++
				}
			}
		}
		if boundaries != 2*len(docs) || marked < 4 || updatedMarked == 0 {
			t.Errorf("%s: %d boundaries, %d marked memberships, %d updated with the mark", v.Name, boundaries, marked, updatedMarked)
		}
	}
}
