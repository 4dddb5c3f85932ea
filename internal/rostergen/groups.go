package rostergen

import "strconv"

// Group ids: the school owner "KOMMUNE-<municipality number>", schools
// "SKOLE-<n>", grade levels "TRINN-<school>-<grade>", classes "BG-<n>",
// contact-teacher groups "KLG-<n>" (n as the class), teaching groups "UG-<n>"
// (a new n whenever a teaching group ends and another takes its place).

const grepScope = "<pifu_scope>grep - levende læreplaner</pifu_scope><pifu_unique>0</pifu_unique></pifu_id>"

// writeGroups writes the school owner, the schools, and per school its
// grade levels, classes, contact-teacher groups and teaching groups.
func (m *Municipality) writeGroups(x *xw, st *state) bool {
	f := &m.frag
	b := append(x.buf, "\n<group>"...)
	b = append(b, f.sidOpen...)
	b = append(b, f.ownerID...)
	b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-org</scheme><typevalue level="1">skoleeier</typevalue></grouptype><description><short>`...)
	b = append(b, m.name...)
	b = append(b, "</short></description>"...)
	b = append(b, f.ownerRel...)
	b = append(b, `<extension><pifu_id type="organizationNumber"><pifu_value>`...)
	b = append(b, m.orgNr...)
	b = append(b, `</pifu_value><pifu_scope>enhetsregisteret</pifu_scope><pifu_unique>1</pifu_unique></pifu_id><pifu_id type="municipalityNumber"><pifu_value>`...)
	b = append(b, m.munNr...)
	b = append(b, `</pifu_value><pifu_scope>http://hotell.difi.no/?dataset=difi/geo/kommune</pifu_scope><pifu_unique>0</pifu_unique></pifu_id><pifu_name type="legalName"><pifu_value>`...)
	b = append(b, m.name...)
	x.buf = append(b, "</pifu_value></pifu_name></extension></group>"...)

	l := m.lay
	for i := range l.schools {
		s := &l.schools[i]
		b := append(x.buf, "\n<group>"...)
		b = append(b, f.sidOpen...)
		b = append(b, "SKOLE-"...)
		b = strconv.AppendInt(b, int64(s.num), 10)
		b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-org</scheme><typevalue level="2">skole</typevalue></grouptype><description><short>`...)
		b = append(b, s.name.xml...)
		b = append(b, "</short></description><email>postmottak."...)
		b = append(b, s.name.ascii...)
		b = append(b, f.mailDomain...)
		b = append(b, "</email>"...)
		b = append(b, f.ownerRel...)
		b = append(b, `<extension><pifu_id type="organizationNumber"><pifu_value>`...)
		b = append(b, s.orgNr...)
		b = append(b, `</pifu_value><pifu_scope>enhetsregisteret</pifu_scope><pifu_unique>1</pifu_unique></pifu_id><pifu_name type="name"><pifu_value>`...)
		b = append(b, s.name.xml...)
		b = append(b, "</pifu_value></pifu_name>"...)
		for _, t := range s.types {
			b = append(b, "<pifu_schoolType>"...)
			b = append(b, t...)
			b = append(b, "</pifu_schoolType>"...)
		}
		x.buf = append(b, "</extension></group>"...)
		if !x.full() {
			return false
		}
	}
	for i := range l.schools {
		if !m.writeSchoolGroups(x, st, i) {
			return false
		}
	}
	return true
}

func (m *Municipality) writeSchoolGroups(x *xw, st *state, si int) bool {
	f := &m.frag
	l := m.lay
	s := &l.schools[si]
	rel := f.schoolRel[si]
	for ti := s.trinnLo; ti < s.trinnLo+uint32(s.gradeHi-s.gradeLo+1); ti++ {
		g := int64(l.trinns[ti].grade)
		b := append(x.buf, "\n<group>"...)
		b = append(b, f.sidOpen...)
		b = appendTrinnID(b, s.num, g)
		b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="4">trinn</typevalue></grouptype><description><short>`...)
		b = strconv.AppendInt(b, g, 10)
		b = append(b, ". trinn</short><long>"...)
		b = strconv.AppendInt(b, g, 10)
		b = append(b, ". trinn, "...)
		b = append(b, s.name.xml...)
		b = append(b, "</long></description>"...)
		b = append(b, f.groupTF...)
		b = append(b, rel...)
		b = append(b, `<extension><pifu_id type="grepCode"><pifu_value>http://psi.udir.no/laereplan/aarstrinn/aarstrinn`...)
		b = strconv.AppendInt(b, g, 10)
		b = append(b, "</pifu_value>"+grepScope+`<pifu_id type="grepCodeShortForm"><pifu_value>`...)
		b = strconv.AppendInt(b, g, 10)
		x.buf = append(b, ". årstrinn</pifu_value>"+grepScope+"</extension></group>"...)
	}
	for ci := s.classLo; ci < s.classHi; ci++ {
		c := &l.classes[ci]
		b := append(x.buf, "\n<group>"...)
		b = append(b, f.sidOpen...)
		b = append(b, "BG-"...)
		b = appendUint(b, uint64(ci+1))
		b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="1">basisgruppe</typevalue></grouptype><description><short>`...)
		b = append(b, c.name...)
		b = append(b, "</short><long>Basisgruppe "...)
		b = append(b, c.name...)
		b = append(b, ", "...)
		b = append(b, s.name.xml...)
		b = append(b, "</long></description>"...)
		b = append(b, f.groupTF...)
		b = append(b, rel...)
		b = append(b, "</group>\n<group>"...)
		b = append(b, f.sidOpen...)
		b = append(b, "KLG-"...)
		b = appendUint(b, uint64(ci+1))
		b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="3">kontaktlærergruppe</typevalue></grouptype><description><short>Kontaktlærergruppe `...)
		b = append(b, c.name...)
		b = append(b, "</short><long>Kontaktlærergruppe "...)
		b = append(b, c.name...)
		b = append(b, ", "...)
		b = append(b, s.name.xml...)
		b = append(b, "</long></description>"...)
		b = append(b, f.groupTF...)
		b = append(b, rel...)
		b = append(b, "</group>"...)
		for slot := c.tgLo; slot < c.tgHi; slot++ {
			sub := &subjects[l.tgSubject[slot]]
			b = append(b, "\n<group>"...)
			b = append(b, f.sidOpen...)
			b = append(b, "UG-"...)
			b = appendUint(b, uint64(st.tgID[slot]))
			b = append(b, sidClose+`<grouptype><scheme>pifu-ims-go-grp</scheme><typevalue level="2">undervisningsgruppe</typevalue></grouptype><description><short>`...)
			b = append(b, sub.short...)
			b = append(b, ' ')
			b = append(b, c.name...)
			b = append(b, "</short><long>"...)
			b = append(b, sub.name...)
			b = append(b, ' ')
			b = append(b, c.name...)
			b = append(b, ", "...)
			b = append(b, s.name.xml...)
			b = append(b, "</long></description>"...)
			if since := st.tgSince[slot]; since == 0 {
				b = append(b, f.groupTF...)
			} else {
				b = append(b, `<timeframe><begin restrict="0">`...)
				b = appendDate(b, dayOf(uint64(since)))
				b = append(b, f.groupTF[len(`<timeframe><begin restrict="0">2026-08-17`):]...)
			}
			b = append(b, rel...)
			b = append(b, `<extension><pifu_id type="grepCode"><pifu_value>http://psi.udir.no/kl06/`...)
			b = append(b, sub.code...)
			b = append(b, "</pifu_value>"+grepScope+`<pifu_id type="grepCodeShortForm"><pifu_value>`...)
			b = append(b, sub.code...)
			b = append(b, "</pifu_value>"+grepScope+"</extension></group>"...)
		}
		x.buf = b
		if !x.full() {
			return false
		}
	}
	return true
}

func appendTrinnID(b []byte, school int, grade int64) []byte {
	b = append(b, "TRINN-"...)
	b = strconv.AppendInt(b, int64(school), 10)
	b = append(b, '-')
	return strconv.AppendInt(b, grade, 10)
}

// Role openings, up to the begin date of the role's timeframe.
const (
	xmlPupil     = `</id></sourcedid><idtype>1</idtype><role roletype="01"><status>1</status><timeframe><begin>`
	xmlTeacher   = `</id></sourcedid><idtype>1</idtype><role roletype="02"><status>1</status><timeframe><begin>`
	xmlFaglaerer = `</id></sourcedid><idtype>1</idtype><role roletype="02"><subrole>faglærer</subrole><status>1</status><timeframe><begin>`
	xmlRektor    = `</id></sourcedid><idtype>1</idtype><role roletype="05"><subrole>rektor</subrole><status>1</status><timeframe><begin>`
	xmlInspektor = `</id></sourcedid><idtype>1</idtype><role roletype="05"><subrole>inspektør</subrole><status>1</status><timeframe><begin>`
	xmlContact   = `</id></sourcedid><idtype>1</idtype><role roletype="06"><status>1</status><timeframe><begin>`
	xmlAssistant = `</id></sourcedid><idtype>1</idtype><role roletype="08"><status>1</status><timeframe><begin>`
)

func (m *Municipality) appendStaffMember(b []byte, staff uint32, role string, day int64) []byte {
	b = append(b, m.frag.memberOpen...)
	b = append(b, kindPrefix[kindStaff]...)
	b = appendUint(b, uint64(staff+1))
	b = append(b, role...)
	b = appendDate(b, day)
	return append(b, m.frag.roleEnd...)
}

func (m *Municipality) appendGroupOpen(b []byte, prefix string, n uint64) []byte {
	b = append(b, "\n<membership>"...)
	b = append(b, m.frag.sidOpen...)
	b = append(b, prefix...)
	b = appendUint(b, n)
	return append(b, sidClose...)
}

// writePupilMembers writes a membership record in the current group for
// each pupil of class ci.
func (m *Municipality) writePupilMembers(x *xw, st *state, ci uint32) bool {
	for _, slot := range st.classPupils[st.classStart[ci]:st.classStart[ci+1]] {
		b := append(x.buf, m.frag.memberOpen...)
		b = append(b, kindPrefix[kindPupil]...)
		b = appendUint(b, uint64(st.pID[slot]))
		b = append(b, xmlPupil...)
		b = appendDate(b, dayOf(uint64(st.pSince[slot])))
		x.buf = append(b, m.frag.roleEnd...)
		if !x.full() {
			return false
		}
	}
	return true
}
