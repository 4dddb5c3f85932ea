package rostergen

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Municipality is a simulated municipality whose export can be written at
// any generation. It is safe for concurrent use: states are immutable once
// computed, and computing a new one is serialised.
type Municipality struct {
	spec   Spec
	slug   string // "fjordvik"
	source string // "vfs@fjordvik.kommune.no"
	name   string // the spec's name, XML-escaped
	munNr  string // "4649"
	orgNr  string // the school owner's organisation number
	lay    *layout
	plan   plan
	frag   fragments

	mu   sync.Mutex
	base *state // generation 0
	hi   *state // the highest generation computed
	cur  *state // the most recently computed generation
}

var countyPrefixes = []string{"03", "11", "15", "18", "31", "32", "33", "34", "39", "40", "42", "46", "50", "55", "56"}

// New validates spec and precomputes the municipality's layout and its
// generation 0. It takes a fraction of a second for the large preset.
func New(spec Spec) (*Municipality, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("rostergen: %w", err)
	}
	m := &Municipality{spec: spec}
	m.slug = slugOf(spec.Name)
	m.source = "vfs@" + m.slug + ".kommune.no"
	m.name = escapeString(spec.Name)
	h := hash(spec.Seed, saltSchool, 1<<32, 4)
	m.munNr = countyPrefixes[pick(h, len(countyPrefixes))] + twoDigits(1+int(h%99))
	m.orgNr = orgNumber(hash(spec.Seed, saltSchool, 1<<32, 3))
	m.lay = buildLayout(spec.Seed, spec.Sizes)
	m.plan = newPlan(spec.churn(), spec.Sizes.Pupils, len(m.lay.tgClass))
	m.frag = newFragments(m)
	m.base = baseState(spec.Seed, m.lay, spec.Sizes)
	m.hi, m.cur = m.base, m.base
	return m, nil
}

func twoDigits(n int) string {
	s := strconv.Itoa(n)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

// Source returns the datasource of the export ("vfs@fjordvik.kommune.no"),
// which is also the source of every sourcedid in it.
func (m *Municipality) Source() string { return m.source }

// stateAt returns the state of generation gen, computing it from the
// nearest cached state at or below gen. Cancelling ctx stops the computation
// with ctx.Err().
func (m *Municipality) stateAt(ctx context.Context, gen uint64) (*state, error) {
	if gen > MaxGeneration {
		return nil, fmt.Errorf("generation %d: %w (at most %d)", gen, ErrGeneration, MaxGeneration)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	from := m.base
	for _, s := range [2]*state{m.hi, m.cur} {
		if s.gen == gen {
			return s, nil
		}
		if s.gen < gen && s.gen > from.gen {
			from = s
		}
	}
	if gen == 0 {
		return m.base, nil
	}
	st := from.clone()
	for g := from.gen + 1; g <= gen; g++ {
		if g%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		st.apply(m.spec.Seed, m.lay, m.plan, g)
	}
	st.reindex(len(m.lay.classes))
	m.cur = st
	if st.gen > m.hi.gen {
		m.hi = st
	}
	return st, nil
}

// Stats counts what the export at gen holds, as a parser would count it. It
// computes the state of gen if it is not cached (see WriteExport), and
// returns zero Stats for a generation above MaxGeneration.
func (m *Municipality) Stats(gen uint64) Stats {
	st, err := m.stateAt(context.Background(), gen)
	if err != nil {
		return Stats{}
	}
	l := m.lay
	s := Stats{
		Pupils:    st.pAlive,
		Guardians: st.gAlive,
		Staff:     len(l.staffRole),
		Orgs:      1 + len(l.schools),
		Groups:    len(l.trinns) + 2*len(l.classes) + len(l.tgClass),
	}
	s.Persons = s.Pupils + s.Guardians + s.Staff
	for i := range l.schools {
		s.Memberships += 1 + int(l.schools[i].nInsp) // 05: rektor and inspektører
	}
	for ci := range l.classes {
		c := &l.classes[ci]
		n := int(st.classStart[ci+1] - st.classStart[ci])
		subj := int(c.tgHi - c.tgLo)
		s.Memberships += n * (3 + subj) // trinn, class, contact-teacher group, teaching groups
		s.Memberships += 2 + subj       // contact teacher in class and contact-teacher group, a teacher per teaching group
		if c.assistant >= 0 {
			s.Memberships++
		}
	}
	return s
}
