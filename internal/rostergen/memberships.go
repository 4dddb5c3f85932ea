package rostergen

// writeMemberships writes, per school: the management (05) at the school,
// the pupils (01) of each grade level, and per class the pupils, the contact
// teacher (06) and the assistant (08) in the class, the pupils and the
// contact teacher in the contact-teacher group, and the teacher (02) and the
// pupils of each teaching group.
func (m *Municipality) writeMemberships(x *xw, st *state) bool {
	l := m.lay
	for si := range l.schools {
		s := &l.schools[si]
		b := m.appendGroupOpen(x.buf, "SKOLE-", uint64(s.num))
		b = m.appendStaffMember(b, s.staffLo, xmlRektor, yearBegin)
		for k := uint32(1); k <= s.nInsp; k++ {
			b = m.appendStaffMember(b, s.staffLo+k, xmlInspektor, yearBegin)
		}
		x.buf = append(b, "\n</membership>"...)

		for ti := s.trinnLo; ti < s.trinnLo+uint32(s.gradeHi-s.gradeLo+1); ti++ {
			t := &l.trinns[ti]
			if st.classStart[t.classHi] == st.classStart[t.classLo] {
				continue // no pupils in this grade now: a membership needs a member
			}
			b := append(x.buf, "\n<membership>"...)
			b = append(b, m.frag.sidOpen...)
			b = appendTrinnID(b, s.num, int64(t.grade))
			x.buf = append(b, sidClose...)
			for ci := t.classLo; ci < t.classHi; ci++ {
				if !m.writePupilMembers(x, st, ci) {
					return false
				}
			}
			x.buf = append(x.buf, "\n</membership>"...)
		}

		for ci := s.classLo; ci < s.classHi; ci++ {
			c := &l.classes[ci]
			contact := st.classContact[ci]
			x.buf = m.appendGroupOpen(x.buf, "BG-", uint64(ci+1))
			x.buf = m.appendStaffMember(x.buf, contact, xmlContact, yearBegin)
			if c.assistant >= 0 {
				x.buf = m.appendStaffMember(x.buf, uint32(c.assistant), xmlAssistant, yearBegin)
			}
			if !m.writePupilMembers(x, st, ci) {
				return false
			}
			x.buf = append(x.buf, "\n</membership>"...)

			x.buf = m.appendGroupOpen(x.buf, "KLG-", uint64(ci+1))
			x.buf = m.appendStaffMember(x.buf, contact, xmlContact, yearBegin)
			if !m.writePupilMembers(x, st, ci) {
				return false
			}
			x.buf = append(x.buf, "\n</membership>"...)

			for slot := c.tgLo; slot < c.tgHi; slot++ {
				id := uint64(st.tgID[slot])
				x.buf = m.appendGroupOpen(x.buf, "UG-", id)
				role := xmlTeacher
				if hash(m.spec.Seed, saltFaglaerer, id, 0)&1 == 0 {
					role = xmlFaglaerer
				}
				x.buf = m.appendStaffMember(x.buf, st.tgTeacher[slot], role, dayOf(uint64(st.tgSince[slot])))
				if !m.writePupilMembers(x, st, ci) {
					return false
				}
				x.buf = append(x.buf, "\n</membership>"...)
			}
		}
	}
	return true
}
