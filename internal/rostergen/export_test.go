package rostergen

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu/pifutest"
)

func TestExportValidatesAgainstSchema(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		preset string
		gens   []uint64
	}{{"tiny", []uint64{0, 5}}, {"small", []uint64{0, 5}}, {"medium", []uint64{5}}} {
		m := newPreset(t, c.preset, 42)
		for _, gen := range c.gens {
			pifutest.Validate(t, c.preset, export(t, m, gen))
		}
	}
}

func TestExportEscapesNames(t *testing.T) {
	name := `Fjord & "Vik" <kommune> 'Ø'`
	sz, _ := Preset("tiny")
	m, err := New(Spec{TenantID: "t", Name: name, Seed: 3, Sizes: sz})
	must(t, err)
	data := export(t, m, 0)
	pifutest.Validate(t, "escaped", data)
	d := parseDoc(t, data)
	for _, g := range d.groups {
		if g.typeValue() == "skoleeier" && g.Short != name {
			t.Fatalf("school owner is %q, want %q", g.Short, name)
		}
	}
	if d.datasource != "vfs@fjord-vik-kommune.kommune.no" { // the slug is cut at 17 characters
		t.Fatalf("datasource %q", d.datasource)
	}
}

func TestExportIsDeterministic(t *testing.T) {
	a := newPreset(t, "small", 11)
	b := newPreset(t, "small", 11)
	other := newPreset(t, "small", 12)

	a5 := export(t, a, 5)
	if !bytes.Equal(a5, export(t, b, 5)) {
		t.Fatal("two municipalities with the same spec differ at generation 5")
	}
	// The same generation reached another way: from a later cached state
	// back to it, and step by step.
	export(t, b, 9)
	if !bytes.Equal(a5, export(t, b, 5)) {
		t.Fatal("generation 5 differs after computing generation 9")
	}
	for g := uint64(0); g <= 5; g++ {
		export(t, b, g)
	}
	if !bytes.Equal(a5, export(t, b, 5)) {
		t.Fatal("generation 5 differs when reached one generation at a time")
	}
	if bytes.Equal(a5, export(t, other, 5)) {
		t.Fatal("another seed gives the same bytes")
	}
	if bytes.Equal(a5, export(t, a, 6)) {
		t.Fatal("generation 6 is the same as generation 5")
	}
	d5, d6 := parseDoc(t, a5), parseDoc(t, export(t, a, 6))
	if d5.datetime != "2026-08-17T11:00:00" || d6.datetime != "2026-08-17T12:00:00" {
		t.Fatalf("datetimes %q, %q: want generation hours from 2026-08-17T06:00:00", d5.datetime, d6.datetime)
	}
}

func TestStatsMatchDocument(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		preset string
		gens   []uint64
	}{{"tiny", []uint64{0, 3}}, {"small", []uint64{0, 3}}, {"medium", []uint64{3}}} {
		m := newPreset(t, c.preset, 5)
		for _, gen := range c.gens {
			d := parseDoc(t, export(t, m, gen))
			if got, want := m.Stats(gen), d.stats(); got != want {
				t.Errorf("%s gen %d: Stats = %+v, document holds %+v", c.preset, gen, got, want)
			}
		}
	}
}

func TestLargePresetSizes(t *testing.T) {
	s := newPreset(t, "large", 1).Stats(0)
	near := func(what string, got, want int, tol float64) {
		if float64(got) < float64(want)*(1-tol) || float64(got) > float64(want)*(1+tol) {
			t.Errorf("large: %d %s, want about %d", got, what, want)
		}
	}
	near("pupils", s.Pupils, 60000, 0)
	near("staff", s.Staff, 6000, 0)
	near("guardians", s.Guardians, 100000, 0.1)
	near("groups", s.Groups+s.Orgs, 20000, 0.15)
	near("memberships", s.Memberships, 600000, 0.1)
}

func TestDocumentContent(t *testing.T) {
	m := newPreset(t, "small", 8)
	d := parseDoc(t, export(t, m, 0))
	if want := []string{"properties", "person", "group", "membership"}; strings.Join(d.order, ",") != strings.Join(want, ",") {
		t.Fatalf("top-level order %v, want %v", d.order, want)
	}
	if d.typ != "full" || d.datasource != "vfs@fjordvik.kommune.no" {
		t.Fatalf("properties: type %q, datasource %q", d.typ, d.datasource)
	}
	email := regexp.MustCompile(`^.+@.+(\..+)+$`)
	tel := regexp.MustCompile(`^\+\d+$`)
	var leadingZero, noNIN, oldNew, twoGuardians int
	letters := map[rune]bool{}
	for key, p := range d.persons {
		for _, r := range p.FN {
			letters[r] = true
		}
		if p.Email != "" && !email.MatchString(p.Email) {
			t.Errorf("%s: e-mail %q", key, p.Email)
		}
		for _, n := range p.Tel {
			if !tel.MatchString(n) {
				t.Errorf("%s: phone %q", key, n)
			}
		}
		if len(p.SIDs) == 2 {
			if p.SIDs[0].Type != "Old" || p.SIDs[1].Type != "New" || p.SIDs[0].ID == p.SIDs[1].ID {
				t.Errorf("%s: sourcedids %+v", key, p.SIDs)
			}
			oldNew++
		}
		nin, ok := p.userID("personNIN")
		switch {
		case !ok && p.kind() == "pupil":
			noNIN++
		case ok:
			if !validNIN(nin) {
				t.Errorf("%s: NIN %q is not 11 digits with valid control digits", key, nin)
			}
			if nin[0] == '0' {
				leadingZero++
			}
		}
		if p.kind() == "pupil" {
			if len(p.Contacts) == 2 {
				twoGuardians++
			}
			if len(p.Contacts) == 0 || len(p.Contacts) > 2 {
				t.Errorf("%s: a pupil with %d guardians, want 1 or 2", key, len(p.Contacts))
			}
			for _, c := range p.Contacts {
				if g := d.persons[c.SID.ID]; c.Type != "guardian" || g == nil || g.kind() != "guardian" {
					t.Errorf("%s: contact %+v is not a guardian in the document", key, c)
				}
			}
		}
	}
	for _, r := range "æøåÆØÅ" {
		if r == 'Æ' {
			continue // no common Norwegian name starts with Æ
		}
		if !letters[r] {
			t.Errorf("no name contains %q", r)
		}
	}
	if leadingZero == 0 || noNIN == 0 || oldNew == 0 || twoGuardians == 0 {
		t.Errorf("NINs with a leading zero: %d, pupils without NIN: %d, persons with Old/New: %d, pupils with two guardians: %d",
			leadingZero, noNIN, oldNew, twoGuardians)
	}
	types := map[string]int{}
	for key, g := range d.groups {
		types[g.typeValue()]++
		parent := g.Rels[0].SID.ID
		switch v := g.typeValue(); {
		case v == "skoleeier":
			if parent != key {
				t.Errorf("school owner %s has parent %s", key, parent)
			}
		case v == "skole":
			if d.groups[parent] == nil || d.groups[parent].typeValue() != "skoleeier" {
				t.Errorf("school %s has parent %s", key, parent)
			}
			if len(g.IDs) == 0 || g.IDs[0].Type != "organizationNumber" || !regexp.MustCompile(`^\d{9}$`).MatchString(g.IDs[0].Value) {
				t.Errorf("school %s: ids %+v", key, g.IDs)
			}
		default:
			if d.groups[parent] == nil || d.groups[parent].typeValue() != "skole" {
				t.Errorf("group %s (%s) has parent %s, not a school", key, v, parent)
			}
			if g.AdminPeriod != "2026/2027" {
				t.Errorf("group %s: adminperiod %q", key, g.AdminPeriod)
			}
			if v == "undervisningsgruppe" && (len(g.IDs) != 2 || !regexp.MustCompile(`^[A-Z]{3}\d{4}$`).MatchString(g.IDs[1].Value)) {
				t.Errorf("teaching group %s: grep ids %+v", key, g.IDs)
			}
		}
	}
	for _, typ := range []string{"skoleeier", "skole", "trinn", "basisgruppe", "kontaktlærergruppe", "undervisningsgruppe"} {
		if types[typ] == 0 {
			t.Errorf("no group of type %s (have %v)", typ, types)
		}
	}
	if d.untimed != 0 {
		t.Errorf("%d of %d membership roles lack a timeframe with begin and end", d.untimed, d.records)
	}
	roles := map[string]int{}
	for r := range d.roles {
		if d.groups[r.group] == nil || d.persons[r.member] == nil {
			t.Errorf("membership %v points outside the document", r)
		}
		roles[r.roletype]++
	}
	for _, rt := range []string{"01", "02", "05", "06", "08"} {
		if roles[rt] == 0 {
			t.Errorf("no membership with roletype %s (have %v)", rt, roles)
		}
	}
	for _, sub := range []string{"faglærer", "rektor", "inspektør"} {
		if d.subroles[sub] == 0 {
			t.Errorf("no membership with subrole %s (have %v)", sub, d.subroles)
		}
	}
}

func validNIN(s string) bool {
	if len(s) != 11 {
		return false
	}
	var d [11]int
	for i := range s {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		d[i] = int(s[i] - '0')
	}
	k1 := (11 - (3*d[0]+7*d[1]+6*d[2]+1*d[3]+8*d[4]+9*d[5]+4*d[6]+5*d[7]+2*d[8])%11) % 11
	k2 := (11 - (5*d[0]+4*d[1]+3*d[2]+2*d[3]+7*d[4]+6*d[5]+5*d[6]+4*d[7]+3*d[8]+2*k1)%11) % 11
	return k1 == d[9] && k2 == d[10]
}

// cancelWriter cancels its context on the first write.
type cancelWriter struct {
	cancel context.CancelFunc
	n      int
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.cancel()
	return len(p), nil
}

func TestWriteExportStopsOnCancel(t *testing.T) {
	m := newPreset(t, "large", 2)
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelWriter{cancel: cancel}
	n, err := m.WriteExport(ctx, w, 1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n != int64(w.n) || n > 1<<20 {
		t.Fatalf("wrote %d bytes (returned %d) after cancelling on the first chunk", w.n, n)
	}

	// Already cancelled: nothing is written.
	n, err = m.WriteExport(ctx, w, 1)
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("cancelled context: n=%d err=%v", n, err)
	}
}

func TestSpecValidation(t *testing.T) {
	good := Spec{TenantID: "t", Name: "Fjordvik kommune", Sizes: Sizes{Schools: 1, Pupils: 12, Staff: 4}}
	must(t, good.Validate())
	cases := []struct {
		field string
		edit  func(*Spec)
	}{
		{"tenant_id", func(s *Spec) { s.TenantID = " " }},
		{"name", func(s *Spec) { s.Name = "" }},
		{"name", func(s *Spec) { s.Name = strings.Repeat("å", 61) }},
		{"name", func(s *Spec) { s.Name = "Fjord\x01vik" }},
		{"name", func(s *Spec) { s.Name = "!!!" }},
		{"sizes.schools", func(s *Spec) { s.Sizes.Schools = 0 }},
		{"sizes.pupils", func(s *Spec) { s.Sizes.Pupils = 0 }},
		{"sizes.staff", func(s *Spec) { s.Sizes.Staff = 1 }},
		{"churn", func(s *Spec) { s.Churn = 1.5 }},
		{"churn", func(s *Spec) { s.Churn = -0.1 }},
	}
	for _, c := range cases {
		s := good
		c.edit(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: error %v does not name %s", s, err, c.field)
		}
		if _, err := New(s); err == nil {
			t.Errorf("New accepted %+v", s)
		}
	}
	if _, err := Preset("huge"); !errors.Is(err, ErrUnknownPreset) || !strings.Contains(err.Error(), `"huge"`) {
		t.Errorf("Preset(huge) = %v", err)
	}
	m := newPreset(t, "tiny", 1)
	if _, err := m.WriteExport(context.Background(), &bytes.Buffer{}, MaxGeneration+1); !errors.Is(err, ErrGeneration) {
		t.Errorf("generation above the maximum: %v", err)
	}
}

func TestConcurrentWritesAgree(t *testing.T) {
	t.Parallel()
	want := map[uint64][]byte{}
	ref := newPreset(t, "small", 17)
	for g := uint64(0); g < 4; g++ {
		want[g] = export(t, ref, g)
	}
	m := newPreset(t, "small", 17)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			gen := uint64((i * 3) % 4)
			var buf bytes.Buffer
			_, err := m.WriteExport(context.Background(), &buf, gen)
			if err == nil && !bytes.Equal(buf.Bytes(), want[gen]) {
				err = errors.New("concurrent export differs from the sequential one")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
