package rostergen

import "math"

// plan says how many changes of each kind one generation makes. Every kind
// happens at least once per generation, so consecutive exports always differ
// in every way a school year changes them.
type plan struct {
	leave, join int // pupils leaving, pupils joining (equal: the size stays)
	move        int // pupils changing class
	name        int // persons changing name (family name, and with it e-mail)
	contact     int // persons changing phone (and private e-mail)
	staff       int // teaching groups or classes getting another teacher
	end         int // teaching groups ending, each replaced by a new one
}

func newPlan(churn float64, pupils, slots int) plan {
	n := churn * float64(pupils)
	t := churn * float64(slots)
	at1 := func(x float64) int { return max(1, int(math.Round(x))) }
	return plan{
		leave:   at1(n * 0.20),
		join:    at1(n * 0.20),
		move:    at1(n * 0.25),
		name:    at1(n * 0.10),
		contact: at1(n * 0.25),
		staff:   at1(t * 0.25),
		end:     at1(t * 0.05),
	}
}

// apply turns the state of generation g-1 into that of generation g. The
// changes are drawn from hash(seed, g) and the state alone, so the state at
// N is the same whichever way it was reached. It leaves the class index
// stale: call reindex before writing.
func (st *state) apply(seed uint64, l *layout, p plan, g uint64) {
	r := newRNG(seed, saltGen, g)
	// Leavers first, joiners last, so that the changes between them touch
	// only persons who are in both generations. The first leaver is one
	// whose guardians have no other pupil, so guardians leave too.
	for i := 0; i < p.leave && st.pAlive > 1; i++ {
		slot := st.randomPupil(r)
		if i == 0 {
			slot = st.pupilWithOwnGuardians(slot)
		}
		st.removePupil(slot)
	}
	for i := 0; i < p.move; i++ {
		slot := st.randomPupil(r)
		if to, ok := otherClass(r, l, st.pClass[slot]); ok {
			st.pClass[slot] = to
			st.pSince[slot] = uint32(g)
		}
	}
	for i := 0; i < p.name; i++ {
		switch i % 4 {
		case 0:
			st.pName[st.randomPupil(r)]++
		case 2:
			st.sName[r.intn(len(st.sName))]++
		default:
			st.gName[st.randomGuardian(r)]++
		}
	}
	for i := 0; i < p.contact; i++ {
		switch i % 4 {
		case 1:
			st.sContact[r.intn(len(st.sContact))]++
		case 3:
			st.pContact[st.randomPupil(r)]++
		default:
			st.gContact[st.randomGuardian(r)]++
		}
	}
	// Groups end before teachers move, so a move is never hidden by an end.
	for i := 0; i < p.end; i++ {
		slot := r.intn(len(st.tgID))
		sch := l.classes[l.tgClass[slot]].school
		st.tgID[slot] = st.tgNext
		st.tgNext++
		st.tgSince[slot] = uint32(g)
		st.tgTeacher[slot] = otherTeacher(r, l, sch, st.tgTeacher[slot])
	}
	for i := 0; i < p.staff; i++ {
		if i%5 == 4 {
			ci := r.intn(len(l.classes))
			st.classContact[ci] = otherTeacher(r, l, l.classes[ci].school, st.classContact[ci])
			continue
		}
		for try := 0; try < 8; try++ {
			slot := r.intn(len(st.tgID))
			if st.tgSince[slot] == uint32(g) {
				continue // a group started this generation has no earlier teacher
			}
			sch := l.classes[l.tgClass[slot]].school
			if t := otherTeacher(r, l, sch, st.tgTeacher[slot]); t != st.tgTeacher[slot] {
				st.tgTeacher[slot] = t
				break
			}
		}
	}
	for i := 0; i < p.join; i++ {
		ci := uint32(r.intn(len(l.classes)))
		st.addPupil(r, ci, int(l.classes[ci].grade), g, 0)
	}
	st.gen = g
}

// pupilWithOwnGuardians returns the first pupil at or after slot (wrapping)
// whose guardians have no other pupil, or slot if there is none.
func (st *state) pupilWithOwnGuardians(slot int) int {
	n := len(st.pID)
	for i, s := 0, slot; i < n; i, s = i+1, (s+1)%n {
		if st.pID[s] != 0 && st.gRef[st.pG1[s]-1] == 1 {
			return s
		}
	}
	return slot
}

// randomPupil returns the slot of a pupil drawn from r; there must be one.
func (st *state) randomPupil(r *rng) int {
	n := len(st.pID)
	for s := r.intn(n); ; s = (s + 1) % n {
		if st.pID[s] != 0 {
			return s
		}
	}
}

// randomGuardian returns the slot of a guardian drawn from r; there must be
// one (every pupil has at least one).
func (st *state) randomGuardian(r *rng) int {
	n := len(st.gID)
	for s := r.intn(n); ; s = (s + 1) % n {
		if st.gID[s] != 0 {
			return s
		}
	}
}

// otherClass picks a class for a pupil leaving class from: another class of
// the same grade at the same school if there is one, else of the same grade
// elsewhere, else any other class.
func otherClass(r *rng, l *layout, from uint32) (uint32, bool) {
	c := &l.classes[from]
	s := &l.schools[c.school]
	t := &l.trinns[s.trinnLo+uint32(int(c.grade)-s.gradeLo)]
	if n := t.classHi - t.classLo; n > 1 {
		return t.classLo + (from-t.classLo+1+uint32(r.intn(int(n-1))))%n, true
	}
	if same := l.byGrade[c.grade]; len(same) > 1 {
		for {
			if to := same[r.intn(len(same))]; to != from {
				return to, true
			}
		}
	}
	if n := uint32(len(l.classes)); n > 1 {
		return (from + 1 + uint32(r.intn(int(n-1)))) % n, true
	}
	return from, false
}

// otherTeacher picks a teacher of school sch other than cur when the school
// has more than one.
func otherTeacher(r *rng, l *layout, sch uint32, cur uint32) uint32 {
	lo, hi := l.schools[sch].teachers()
	n := hi - lo
	if n < 2 {
		return lo
	}
	if cur < lo || cur >= hi {
		return lo + uint32(r.intn(int(n)))
	}
	return lo + (cur-lo+1+uint32(r.intn(int(n-1))))%n
}
