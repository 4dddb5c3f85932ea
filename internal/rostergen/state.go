package rostergen

import "slices"

// state is what changes between generations, as compact arrays of small
// integers indexed by slot. A slot freed by a leaving pupil (or a guardian
// with no pupils left) is reused by the next one who joins, with a new id, so
// the arrays stay the size of the population. A state is immutable once
// published by Municipality.stateAt.
type state struct {
	gen uint64

	// Pupils, by slot. pID 0 marks a free slot.
	pID      []uint32
	pClass   []uint32
	pBorn    []uint16 // days since 1950-01-01
	pSince   []uint32 // generation of joining or of the last class change
	pName    []uint8  // name version
	pContact []uint8  // contact (phone) version
	pG1, pG2 []uint32 // guardian slot + 1; 0 for none
	pFree    []uint32
	pNext    uint32 // next pupil id
	pAlive   int

	// Guardians, by slot. gRef 0 marks a free slot.
	gID      []uint32
	gRef     []uint16 // pupils pointing at the guardian
	gName    []uint8
	gContact []uint8
	gFree    []uint32
	gNext    uint32
	gAlive   int

	// Staff, by staff index (fixed set).
	sName    []uint8
	sContact []uint8

	// Teaching-group slots: the group id the slot carries now, its teacher
	// (staff index), and the generation it started.
	tgID      []uint32
	tgTeacher []uint32
	tgSince   []uint32
	tgNext    uint32
	// Contact teacher (staff index) of each class.
	classContact []uint32

	// Index, rebuilt after changes: the pupils of class c are
	// classPupils[classStart[c]:classStart[c+1]], in slot order.
	classStart  []uint32
	classPupils []uint32
}

const (
	kindPupil uint64 = iota + 1
	kindGuardian
	kindStaff
)

// baseState builds generation 0.
func baseState(seed uint64, l *layout, sz Sizes) *state {
	st := &state{}
	r := newRNG(seed, saltBase, 0)
	st.pID = make([]uint32, 0, sz.Pupils)
	guardians := sz.Pupils * 17 / 10
	st.gID = make([]uint32, 0, guardians)
	st.gRef = make([]uint16, 0, guardians)
	for si := range l.schools {
		s := &l.schools[si]
		first := len(st.pID)
		p := l.schoolPupils[si]
		grades := s.gradeHi - s.gradeLo + 1
		for _, t := range l.trinns[s.trinnLo : s.trinnLo+uint32(grades)] {
			gi := int(t.grade) - s.gradeLo
			inGrade := p / grades
			if gi < p%grades {
				inGrade++
			}
			nc := int(t.classHi - t.classLo)
			for k := 0; k < inGrade; k++ {
				st.addPupil(r, t.classLo+uint32(k%nc), int(t.grade), 0, first)
			}
		}
	}
	st.sName = make([]uint8, len(l.staffRole))
	st.sContact = make([]uint8, len(l.staffRole))
	n := len(l.tgClass)
	st.tgID = make([]uint32, n)
	st.tgTeacher = make([]uint32, n)
	st.tgSince = make([]uint32, n)
	for i := range st.tgID {
		st.tgID[i] = uint32(i + 1)
		c := &l.classes[l.tgClass[i]]
		s := &l.schools[c.school]
		lo, hi := s.teachers()
		st.tgTeacher[i] = lo + (uint32(i)-l.classes[s.classLo].tgLo)%(hi-lo)
	}
	st.tgNext = uint32(n + 1)
	st.classContact = make([]uint32, len(l.classes))
	for ci := range l.classes {
		s := &l.schools[l.classes[ci].school]
		lo, hi := s.teachers()
		st.classContact[ci] = lo + (uint32(ci)-s.classLo)%(hi-lo)
	}
	st.reindex(len(l.classes))
	return st
}

// addPupil adds a pupil to class ci, in a free slot or a new one. With
// siblingFrom >= 0 the pupil may share the guardians of a pupil in a slot at
// or after siblingFrom (a sibling).
func (st *state) addPupil(r *rng, ci uint32, grade int, gen uint64, siblingFrom int) {
	st.pNext++
	year := int64(schoolYear - 5 - grade)
	born := daysFromCivil(year, 1, 1) + int64(r.intn(365)) - bornEpoch
	var g1, g2 uint32
	if siblingFrom >= 0 && siblingFrom < len(st.pID) && r.chance(0.10) {
		j := siblingFrom + r.intn(len(st.pID)-siblingFrom)
		if st.pID[j] != 0 && st.gRef[st.pG1[j]-1] < 6 {
			g1, g2 = st.pG1[j], st.pG2[j]
			st.gRef[g1-1]++
			if g2 != 0 {
				st.gRef[g2-1]++
			}
		}
	}
	if g1 == 0 {
		g1 = st.newGuardian()
		if r.chance(0.85) {
			g2 = st.newGuardian()
		}
	}
	var slot int
	if n := len(st.pFree); n > 0 {
		slot = int(st.pFree[n-1])
		st.pFree = st.pFree[:n-1]
	} else {
		slot = len(st.pID)
		st.pID = append(st.pID, 0)
		st.pClass = append(st.pClass, 0)
		st.pBorn = append(st.pBorn, 0)
		st.pSince = append(st.pSince, 0)
		st.pName = append(st.pName, 0)
		st.pContact = append(st.pContact, 0)
		st.pG1 = append(st.pG1, 0)
		st.pG2 = append(st.pG2, 0)
	}
	st.pID[slot] = st.pNext
	st.pClass[slot] = ci
	st.pBorn[slot] = uint16(born)
	st.pSince[slot] = uint32(gen)
	st.pName[slot], st.pContact[slot] = 0, 0
	st.pG1[slot], st.pG2[slot] = g1, g2
	st.pAlive++
}

// newGuardian returns the slot + 1 of a new guardian.
func (st *state) newGuardian() uint32 {
	st.gNext++
	var slot int
	if n := len(st.gFree); n > 0 {
		slot = int(st.gFree[n-1])
		st.gFree = st.gFree[:n-1]
	} else {
		slot = len(st.gID)
		st.gID = append(st.gID, 0)
		st.gRef = append(st.gRef, 0)
		st.gName = append(st.gName, 0)
		st.gContact = append(st.gContact, 0)
	}
	st.gID[slot] = st.gNext
	st.gRef[slot] = 1
	st.gName[slot], st.gContact[slot] = 0, 0
	st.gAlive++
	return uint32(slot + 1)
}

// removePupil frees a pupil's slot and drops guardians left with no pupil.
func (st *state) removePupil(slot int) {
	for _, g := range [2]uint32{st.pG1[slot], st.pG2[slot]} {
		if g == 0 {
			continue
		}
		st.gRef[g-1]--
		if st.gRef[g-1] == 0 {
			st.gID[g-1] = 0
			st.gFree = append(st.gFree, g-1)
			st.gAlive--
		}
	}
	st.pID[slot] = 0
	st.pG1[slot], st.pG2[slot] = 0, 0
	st.pFree = append(st.pFree, uint32(slot))
	st.pAlive--
}

// reindex rebuilds the class → pupils index (a counting sort by class).
func (st *state) reindex(classes int) {
	start := make([]uint32, classes+1)
	for slot, id := range st.pID {
		if id != 0 {
			start[st.pClass[slot]+1]++
		}
	}
	for c := 1; c <= classes; c++ {
		start[c] += start[c-1]
	}
	pupils := make([]uint32, st.pAlive)
	fill := slices.Clone(start[:classes])
	for slot, id := range st.pID {
		if id != 0 {
			c := st.pClass[slot]
			pupils[fill[c]] = uint32(slot)
			fill[c]++
		}
	}
	st.classStart, st.classPupils = start, pupils
}

// clone returns a deep copy whose arrays can be changed freely.
func (st *state) clone() *state {
	c := *st
	c.pID = slices.Clone(st.pID)
	c.pClass = slices.Clone(st.pClass)
	c.pBorn = slices.Clone(st.pBorn)
	c.pSince = slices.Clone(st.pSince)
	c.pName = slices.Clone(st.pName)
	c.pContact = slices.Clone(st.pContact)
	c.pG1 = slices.Clone(st.pG1)
	c.pG2 = slices.Clone(st.pG2)
	c.pFree = slices.Clone(st.pFree)
	c.gID = slices.Clone(st.gID)
	c.gRef = slices.Clone(st.gRef)
	c.gName = slices.Clone(st.gName)
	c.gContact = slices.Clone(st.gContact)
	c.gFree = slices.Clone(st.gFree)
	c.sName = slices.Clone(st.sName)
	c.sContact = slices.Clone(st.sContact)
	c.tgID = slices.Clone(st.tgID)
	c.tgTeacher = slices.Clone(st.tgTeacher)
	c.tgSince = slices.Clone(st.tgSince)
	c.classContact = slices.Clone(st.classContact)
	c.classStart, c.classPupils = nil, nil
	return &c
}
