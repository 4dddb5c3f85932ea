package rostergen

import (
	"context"
	"io"
)

// WriteExport streams the PIFU-IMS 1.3 full export of generation gen to w as
// it is generated, in chunks of about 64 KiB; the document is never held
// whole in memory. It returns the bytes written to w.
//
// The document is a pure function of the Spec and gen: the same gen gives
// the same bytes. Its properties/datetime is simulated time, not the wall
// clock: generation 0 is 2026-08-17T06:00:00 and each generation is one hour
// later. The state of gen is computed from the nearest cached generation at
// or below it (the most recent and the highest computed are cached), so
// asking for consecutive generations is cheap and going back recomputes
// from generation 0.
//
// Cancelling ctx stops the write within one chunk with ctx.Err(). A gen
// above MaxGeneration is an error wrapping ErrGeneration, and an error from
// w is returned as is. It is safe to call concurrently; w is not closed.
func (m *Municipality) WriteExport(ctx context.Context, w io.Writer, gen uint64) (int64, error) {
	st, err := m.stateAt(ctx, gen)
	if err != nil {
		return 0, err
	}
	x := newXW(ctx, w)
	m.writeHeader(x, gen)
	if !m.writePersons(x, st) || !m.writeGroups(x, st) || !m.writeMemberships(x, st) {
		return x.n, x.err
	}
	x.buf = append(x.buf, "\n</enterprise>\n"...)
	x.flush()
	if x.err != nil {
		return x.n, x.err
	}
	if err := ctx.Err(); err != nil {
		return x.n, err
	}
	return x.n, nil
}

func (m *Municipality) writeHeader(x *xw, gen uint64) {
	b := x.buf
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<enterprise xmlns="http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1">`+"\n"+
		`<properties lang="nb"><datasource>`...)
	b = append(b, m.source...)
	b = append(b, "</datasource><type>full</type><datetime>"...)
	b = appendDate(b, dayOf(gen))
	h := (6 + gen) % 24
	b = append(b, 'T', byte('0'+h/10), byte('0'+h%10))
	b = append(b, ":00:00</datetime></properties>"...)
	x.buf = b
}

// writePersons writes the pupils, the staff and the guardians.
func (m *Municipality) writePersons(x *xw, st *state) bool {
	for slot, id := range st.pID {
		if id == 0 {
			continue
		}
		m.writePupil(x, st, slot)
		if !x.full() {
			return false
		}
	}
	for i := range m.lay.staffRole {
		m.writeStaff(x, st, i)
		if !x.full() {
			return false
		}
	}
	for slot, id := range st.gID {
		if id == 0 {
			continue
		}
		m.writeGuardian(x, st, slot)
		if !x.full() {
			return false
		}
	}
	return true
}

// Person ids: "elev-N", "ansatt-N", "foresatt-N"; the few with an Old
// sourcedid had "sats-elev-N" (and so on) before.
var kindPrefix = [...]string{kindPupil: "elev-", kindGuardian: "foresatt-", kindStaff: "ansatt-"}

// hasOldID reports whether a person carries an Old and a New sourcedid:
// about one in 250, and always pupil 1 and staff member 1.
func (m *Municipality) hasOldID(kind, id uint64) bool {
	return id == 1 && kind != kindGuardian || hash(m.spec.Seed, saltSpecial, kind<<40|id, 0)%250 == 0
}

func (m *Municipality) appendSourcedIDs(b []byte, kind, id uint64) []byte {
	if m.hasOldID(kind, id) {
		b = append(b, `<sourcedid sourcedidtype="Old"><source>`...)
		b = append(b, m.source...)
		b = append(b, "</source><id>sats-"...)
		b = append(b, kindPrefix[kind]...)
		b = appendUint(b, id)
		b = append(b, sidClose...)
		b = append(b, `<sourcedid sourcedidtype="New"><source>`...)
		b = append(b, m.source...)
		b = append(b, "</source><id>"...)
	} else {
		b = append(b, m.frag.sidOpen...)
	}
	b = append(b, kindPrefix[kind]...)
	b = appendUint(b, id)
	return append(b, sidClose...)
}

func appendName(b []byte, n personName) []byte {
	b = append(b, "<name><fn>"...)
	b = appendGiven(b, n)
	b = append(b, ' ')
	b = append(b, n.family.xml...)
	b = append(b, "</fn><n><family>"...)
	b = append(b, n.family.xml...)
	b = append(b, "</family><given>"...)
	b = appendGiven(b, n)
	return append(b, "</given></n></name>"...)
}

func appendGiven(b []byte, n personName) []byte {
	b = append(b, n.given1.xml...)
	if n.given2 != nil {
		b = append(b, ' ')
		b = append(b, n.given2.xml...)
	}
	return b
}

// appendMailLocal appends "given.family.N", the local part of a person's
// address at the municipality.
func appendMailLocal(b []byte, n personName, id uint64) []byte {
	b = append(b, n.given1.ascii...)
	b = append(b, '.')
	b = append(b, n.family.ascii...)
	b = append(b, '.')
	return appendUint(b, id)
}

// appendPhone appends a Norwegian mobile number (+474xxxxxxx or +479xxxxxxx).
func appendPhone(b []byte, h uint64) []byte {
	b = append(b, "+47"...)
	if h&1 == 0 {
		b = append(b, '4')
	} else {
		b = append(b, '9')
	}
	v := (h >> 8) % 10_000_000
	for d := uint64(1_000_000); d > 0; d /= 10 {
		b = append(b, byte('0'+v/d%10))
	}
	return b
}

func (m *Municipality) female(kind, id uint64) bool {
	return hash(m.spec.Seed, saltGender, kind<<40|id, 0)&1 == 0
}

// writePupil writes a pupil: NIN (most have one), student number, Feide id,
// name, gender and birthday, school address, a phone from grade 5, status,
// language form and the guardians.
func (m *Municipality) writePupil(x *xw, st *state, slot int) {
	id := uint64(st.pID[slot])
	seed := m.spec.Seed
	female := m.female(kindPupil, id)
	n := nameOf(seed, kindPupil, id, female, st.pName[slot])
	born := int64(st.pBorn[slot]) + bornEpoch
	b := append(x.buf, "\n<person>"...)
	b = m.appendSourcedIDs(b, kindPupil, id)
	if id != 2 && hash(seed, saltNIN, kindPupil<<40|id, 1)%40 != 0 { // about 1 in 40 has no NIN yet
		b = append(b, `<userid useridtype="personNIN">`...)
		b = appendNIN(b, born, !female, hash(seed, saltNIN, kindPupil<<40|id, 0))
		b = append(b, "</userid>"...)
	}
	b = append(b, `<userid useridtype="studentID">`...)
	b = appendUint(b, 100000+id)
	b = append(b, `</userid><userid useridtype="feideID">`...)
	b = append(b, n.given1.ascii...)
	b = appendUint(b, id)
	b = append(b, m.frag.mailDomain...)
	b = append(b, "</userid>"...)
	b = appendName(b, n)
	b = appendDemographics(b, female, born)
	b = append(b, "<email>"...)
	b = appendMailLocal(b, n, id)
	b = append(b, m.frag.pupilDomain...)
	b = append(b, "</email>"...)
	phone := m.lay.classes[st.pClass[slot]].grade >= 5
	var ph uint64
	if phone {
		ph = hash(seed, saltPhone, kindPupil<<40|id, uint64(st.pContact[slot]))
		b = append(b, `<tel teltype="3">`...)
		b = appendPhone(b, ph)
		b = append(b, "</tel>"...)
	}
	b = append(b, "<extension>"...)
	if phone {
		b = append(b, `<pifu_tel type="personMobilePrivate">`...)
		b = appendPhone(b, ph)
		b = append(b, "</pifu_tel>"...)
	}
	b = append(b, `<pifu_status type="activeInactive">aktiv</pifu_status><pifu_status type="pupilStatus">heltid</pifu_status><pifu_preferredLanguage source="ISO 639-1">`...)
	if hash(seed, saltLang, kindPupil<<40|id, 0)%8 == 0 {
		b = append(b, "nn"...)
	} else {
		b = append(b, "nb"...)
	}
	b = append(b, "</pifu_preferredLanguage>"...)
	for _, g := range [2]uint32{st.pG1[slot], st.pG2[slot]} {
		if g == 0 {
			continue
		}
		b = append(b, `<pifu_hasContactPerson type="guardian">`...)
		b = append(b, m.frag.sidOpen...)
		b = append(b, kindPrefix[kindGuardian]...)
		b = appendUint(b, uint64(st.gID[g-1]))
		b = append(b, sidClose+"</pifu_hasContactPerson>"...)
	}
	x.buf = append(b, "</extension></person>"...)
}

// writeStaff writes a member of staff: NIN, employee number, Feide id, name,
// gender and birthday, work address and mobile phone.
func (m *Municipality) writeStaff(x *xw, st *state, i int) {
	id := uint64(i + 1)
	seed := m.spec.Seed
	female := m.female(kindStaff, id)
	n := nameOf(seed, kindStaff, id, female, st.sName[i])
	born := daysFromCivil(1960, 1, 1) + int64(hash(seed, saltBirth, kindStaff<<40|id, 0)%(40*365))
	b := append(x.buf, "\n<person>"...)
	b = m.appendSourcedIDs(b, kindStaff, id)
	b = append(b, `<userid useridtype="personNIN">`...)
	b = appendNIN(b, born, !female, hash(seed, saltNIN, kindStaff<<40|id, 0))
	b = append(b, `</userid><userid useridtype="workforceID">`...)
	b = appendUint(b, 40000+id)
	b = append(b, `</userid><userid useridtype="feideID">`...)
	b = append(b, n.given1.ascii...)
	b = append(b, ".ansatt"...)
	b = appendUint(b, id)
	b = append(b, m.frag.mailDomain...)
	b = append(b, "</userid>"...)
	b = appendName(b, n)
	b = appendDemographics(b, female, born)
	b = append(b, "<email>"...)
	mail := len(b)
	b = appendMailLocal(b, n, id)
	b = append(b, m.frag.mailDomain...)
	mailEnd := len(b)
	b = append(b, `</email><tel teltype="3">`...)
	tel := len(b)
	b = appendPhone(b, hash(seed, saltPhone, kindStaff<<40|id, uint64(st.sContact[i])))
	telEnd := len(b)
	b = append(b, `</tel><extension><pifu_email type="personEmailAtOrg" priority="1">`...)
	b = append(b, b[mail:mailEnd]...)
	b = append(b, `</pifu_email><pifu_tel type="personMobileAtOrg">`...)
	b = append(b, b[tel:telEnd]...)
	x.buf = append(b, `</pifu_tel><pifu_status type="activeInactive">aktiv</pifu_status></extension></person>`...)
}

// writeGuardian writes a guardian: a contact record with name, private
// e-mail and mobile phone, and no user ids or memberships.
func (m *Municipality) writeGuardian(x *xw, st *state, slot int) {
	id := uint64(st.gID[slot])
	seed := m.spec.Seed
	n := nameOf(seed, kindGuardian, id, m.female(kindGuardian, id), st.gName[slot])
	ch := hash(seed, saltPhone, kindGuardian<<40|id, uint64(st.gContact[slot]))
	b := append(x.buf, "\n<person>"...)
	b = m.appendSourcedIDs(b, kindGuardian, id)
	b = appendName(b, n)
	b = append(b, "<email>"...)
	mail := len(b)
	b = append(b, n.given1.ascii...)
	b = append(b, '.')
	b = append(b, n.family.ascii...)
	b = appendUint(b, hash(seed, saltMailNo, kindGuardian<<40|id, uint64(st.gContact[slot]))%1000)
	b = append(b, '@')
	b = append(b, mailDomains[pick(ch^0xABCD, len(mailDomains))].xml...)
	mailEnd := len(b)
	b = append(b, `</email><tel teltype="3">`...)
	tel := len(b)
	b = appendPhone(b, ch)
	telEnd := len(b)
	b = append(b, `</tel><extension><pifu_email type="personEmailPrivate" priority="1">`...)
	b = append(b, b[mail:mailEnd]...)
	b = append(b, `</pifu_email><pifu_tel type="personMobilePrivate">`...)
	b = append(b, b[tel:telEnd]...)
	x.buf = append(b, "</pifu_tel></extension></person>"...)
}

// appendDemographics appends a person's gender (1 female, 2 male) and
// birthday.
func appendDemographics(b []byte, female bool, born int64) []byte {
	b = append(b, "<demographics><gender>"...)
	if female {
		b = append(b, '1')
	} else {
		b = append(b, '2')
	}
	b = append(b, "</gender><bday>"...)
	b = appendDate(b, born)
	return append(b, "</bday></demographics>"...)
}
