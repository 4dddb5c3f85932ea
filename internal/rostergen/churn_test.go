package rostergen

import (
	"slices"
	"strings"
	"testing"
)

// TestEachGenerationChangesEveryWay parses consecutive generations and
// checks that each kind of change a school year brings is there.
func TestEachGenerationChangesEveryWay(t *testing.T) {
	for _, preset := range []string{"tiny", "small"} {
		m := newPreset(t, preset, 21)
		prev := parseDoc(t, export(t, m, 0))
		for gen := uint64(1); gen <= 4; gen++ {
			next := parseDoc(t, export(t, m, gen))
			for _, problem := range compareGenerations(prev, next) {
				t.Errorf("%s, generation %d to %d: %s", preset, gen-1, gen, problem)
			}
			prev = next
		}
	}
}

func classes(d *doc) map[string]string {
	out := map[string]string{}
	for r := range d.roles {
		if r.roletype == "01" && strings.HasPrefix(r.group, "BG-") {
			out[r.member] = r.group
		}
	}
	return out
}

// compareGenerations returns what is missing or wrong between a and the
// generation after it, b.
func compareGenerations(a, b *doc) []string {
	var problems []string
	fail := func(s string) { problems = append(problems, s) }

	var added, removed, moved, renamed, remailed, rephoned int
	classA, classB := classes(a), classes(b)
	for key, p := range b.persons {
		old := a.persons[key]
		if old == nil {
			if p.kind() == "pupil" {
				added++
				if classB[key] == "" {
					fail("new pupil " + key + " is in no class")
				}
				for _, c := range p.Contacts {
					if b.persons[c.SID.ID] == nil {
						fail("new pupil " + key + " points at a missing guardian " + c.SID.ID)
					}
				}
			}
			continue
		}
		if p.kind() == "pupil" && classA[key] != classB[key] {
			moved++
		}
		if p.FN != old.FN {
			renamed++
		}
		if p.Email != old.Email {
			remailed++
		}
		if !slices.Equal(p.Tel, old.Tel) {
			rephoned++
		}
	}
	// Guardians: each one left in b has a pupil in b; each one gone had
	// only pupils who are gone too.
	guarded := map[string]bool{}
	for _, p := range b.persons {
		for _, c := range p.Contacts {
			guarded[c.SID.ID] = true
		}
	}
	var guardiansGone int
	for key, p := range b.persons {
		if p.kind() == "guardian" && !guarded[key] {
			fail("guardian " + key + " has no pupil")
		}
	}
	for key, p := range a.persons {
		if b.persons[key] != nil {
			continue
		}
		switch p.kind() {
		case "pupil":
			removed++
		case "guardian":
			guardiansGone++
		}
		for r := range b.roles {
			if r.member == key {
				fail("person " + key + " is gone but still a member of " + r.group)
				break
			}
		}
	}
	for key, p := range a.persons {
		if p.kind() != "pupil" || b.persons[key] != nil {
			continue
		}
		for _, c := range p.Contacts {
			if b.persons[c.SID.ID] == nil {
				continue
			}
			// The guardian stays: it must still have another pupil in b.
			if !guarded[c.SID.ID] {
				fail("guardian " + c.SID.ID + " stays without pupils")
			}
		}
	}

	var staffMoved, ended int
	for r := range b.roles {
		if r.roletype == "02" && a.groups[r.group] != nil {
			if _, had := a.roles[r]; !had {
				staffMoved++
			}
		}
	}
	for key := range a.groups {
		if b.groups[key] != nil {
			continue
		}
		ended++
		for r := range b.roles {
			if r.group == key {
				fail("group " + key + " ended but still has member " + r.member)
				break
			}
		}
	}

	for _, c := range []struct {
		what string
		n    int
	}{
		{"pupils added", added}, {"pupils removed", removed}, {"guardians gone with their pupils", guardiansGone},
		{"class changes", moved}, {"teachers moved to another group", staffMoved},
		{"name changes", renamed}, {"e-mail changes", remailed}, {"phone changes", rephoned},
		{"groups ended", ended},
	} {
		if c.n == 0 {
			fail("no " + c.what)
		}
	}
	return problems
}

func TestChurnScalesWithSpec(t *testing.T) {
	sz, _ := Preset("small")
	lo, err := New(Spec{TenantID: "t", Name: "Fjordvik kommune", Seed: 4, Sizes: sz, Churn: 0.01})
	must(t, err)
	hi, err := New(Spec{TenantID: "t", Name: "Fjordvik kommune", Seed: 4, Sizes: sz, Churn: 0.2})
	must(t, err)
	if lo.plan.move*10 > hi.plan.move || lo.plan.join*10 > hi.plan.join {
		t.Fatalf("churn 0.01 plans %+v, churn 0.2 plans %+v", lo.plan, hi.plan)
	}
	// A higher churn changes more pupils' classes in one generation.
	count := func(m *Municipality) int {
		a, b := classes(parseDoc(t, export(t, m, 0))), classes(parseDoc(t, export(t, m, 1)))
		n := 0
		for k, c := range a {
			if b[k] != "" && b[k] != c {
				n++
			}
		}
		return n
	}
	if l, h := count(lo), count(hi); l*5 > h {
		t.Fatalf("class changes: %d at churn 0.01, %d at churn 0.2", l, h)
	}
}
