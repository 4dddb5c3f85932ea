package rostergen

import "strconv"

// The layout is the part of a municipality that never changes between
// generations: the school owner, the schools, their grade levels and classes,
// the teaching-group slots of each class, and the staff with their schools and
// roles. What changes (who is in which class, who teaches which group, which
// group id a slot carries, names and contact data) lives in state.

// School year of every generation: the groups' timeframe and adminperiod.
const (
	schoolYear      = 2026
	adminPeriod     = "2026/2027"
	classSizeTarget = 28
)

var (
	yearBegin = daysFromCivil(schoolYear, 8, 17)   // first school day, and generation 0
	yearEnd   = daysFromCivil(schoolYear+1, 6, 18) // last school day
	bornEpoch = daysFromCivil(1950, 1, 1)          // pupils' birthdays are stored from here
)

type subject struct {
	short string // "MAT": the prefix of a teaching group's short name
	name  string // "Matematikk"
	code  string // Grep short form, "MAT0010"
}

var subjects = []subject{
	{"NOR", "Norsk", "NOR0214"},
	{"MAT", "Matematikk", "MAT0010"},
	{"ENG", "Engelsk", "ENG0012"},
	{"KRLE", "Kristendom, religion, livssyn og etikk", "RLE0030"},
	{"KRØ", "Kroppsøving", "KRO0020"},
	{"KHV", "Kunst og håndverk", "KHV0010"},
	{"NAT", "Naturfag", "NAT0010"},
	{"SAF", "Samfunnsfag", "SAF0010"},
}

// subjectsOf returns how many of subjects (from the first) a grade has.
func subjectsOf(grade int) int {
	switch {
	case grade <= 4:
		return 6
	case grade <= 7:
		return 7
	}
	return 8
}

// Staff roles.
const (
	roleRektor uint8 = iota
	roleInspektor
	roleAssistant
	roleTeacher
)

type school struct {
	num              int    // 1-based, in the group id
	name             word   // "Bjørkelia skole"
	orgNr            string // 9 digits
	types            []string
	gradeLo, gradeHi int
	staffLo, staffHi uint32 // [rektor][inspektør...][assistant...][teacher...]
	nInsp, nAsst     uint32
	classLo, classHi uint32
	trinnLo          uint32 // trinn group index of gradeLo
}

func (s *school) teachers() (lo, hi uint32) { return s.staffLo + 1 + s.nInsp + s.nAsst, s.staffHi }

type class struct {
	school    uint32
	grade     uint8
	name      string // "5A"
	tgLo      uint32 // teaching-group slots [tgLo, tgHi)
	tgHi      uint32
	assistant int32 // staff index, or -1
}

type trinn struct {
	school           uint32
	grade            uint8
	classLo, classHi uint32
}

type layout struct {
	schools   []school
	classes   []class
	trinns    []trinn
	tgClass   []uint32 // per teaching-group slot
	tgSubject []uint8
	staffRole []uint8 // per staff index
	staffSch  []uint32
	byGrade   [11][]uint32 // classes of each grade
	// schoolPupils is how many pupils each school has at generation 0.
	schoolPupils []int
}

func buildLayout(seed uint64, sz Sizes) *layout {
	l := &layout{}
	r := newRNG(seed, saltSchool, 0)
	n := sz.Schools

	// School kinds and the number of pupils each gets.
	type kind struct {
		lo, hi int
		types  []string
	}
	barne := kind{1, 7, []string{"barneskole"}}
	ungdom := kind{8, 10, []string{"ungdomsskole"}}
	kombi := kind{1, 10, []string{"barneskole", "ungdomsskole"}}
	kinds := make([]kind, n)
	weights := make([]float64, n)
	total := 0.0
	for i := range kinds {
		switch u := r.next() % 100; {
		case n == 1:
			kinds[i] = kombi
		case i == 0:
			kinds[i] = barne
		case i == 1:
			kinds[i] = ungdom
		case u < 60:
			kinds[i] = barne
		case u < 85:
			kinds[i] = ungdom
		default:
			kinds[i] = kombi
		}
		weights[i] = float64(kinds[i].hi-kinds[i].lo+1) * (0.6 + 0.8*float64(r.next()>>11)/(1<<53))
		total += weights[i]
	}
	l.schoolPupils = apportion(sz.Pupils, 1, weights, total)
	staff := apportion(sz.Staff, 2, l.schoolPupils, float64(sz.Pupils))

	names := schoolNames(seed, n)
	l.schools = make([]school, n)
	l.staffRole = make([]uint8, 0, sz.Staff)
	l.staffSch = make([]uint32, 0, sz.Staff)
	for i := range l.schools {
		s := &l.schools[i]
		k := kinds[i]
		s.num = i + 1
		s.name = names[i]
		s.orgNr = orgNumber(hash(seed, saltSchool, uint64(i), 1))
		s.types = k.types
		grades := min(max(l.schoolPupils[i]/6, 1), k.hi-k.lo+1)
		s.gradeLo, s.gradeHi = k.lo, k.lo+grades-1

		// Staff: one rektor, then inspektører, assistants and teachers.
		ns := uint32(staff[i])
		s.staffLo = uint32(len(l.staffRole))
		s.staffHi = s.staffLo + ns
		s.nInsp = ns / 30
		if ns >= 8 && s.nInsp == 0 {
			s.nInsp = 1
		}
		s.nAsst = ns / 8
		if ns >= 4 && s.nAsst == 0 {
			s.nAsst = 1
		}
		for j := uint32(0); j < ns; j++ {
			role := roleTeacher
			switch {
			case j == 0:
				role = roleRektor
			case j <= s.nInsp:
				role = roleInspektor
			case j <= s.nInsp+s.nAsst:
				role = roleAssistant
			}
			l.staffRole = append(l.staffRole, role)
			l.staffSch = append(l.staffSch, uint32(i))
		}

		// Grade levels and classes.
		s.classLo = uint32(len(l.classes))
		s.trinnLo = uint32(len(l.trinns))
		p := l.schoolPupils[i]
		for g := s.gradeLo; g <= s.gradeHi; g++ {
			inGrade := p / grades
			if g-s.gradeLo < p%grades {
				inGrade++
			}
			nc := max((inGrade+classSizeTarget-1)/classSizeTarget, 1)
			t := trinn{school: uint32(i), grade: uint8(g), classLo: uint32(len(l.classes))}
			for c := 0; c < nc; c++ {
				ci := uint32(len(l.classes))
				cl := class{school: uint32(i), grade: uint8(g), name: className(g, c), assistant: -1}
				if s.nAsst > 0 && (g <= 4 || r.intn(3) == 0) {
					cl.assistant = int32(s.staffLo + 1 + s.nInsp + (ci-s.classLo)%s.nAsst)
				}
				cl.tgLo = uint32(len(l.tgClass))
				for sub := 0; sub < subjectsOf(g); sub++ {
					l.tgClass = append(l.tgClass, ci)
					l.tgSubject = append(l.tgSubject, uint8(sub))
				}
				cl.tgHi = uint32(len(l.tgClass))
				l.classes = append(l.classes, cl)
				l.byGrade[g] = append(l.byGrade[g], ci)
			}
			t.classHi = uint32(len(l.classes))
			l.trinns = append(l.trinns, t)
		}
		s.classHi = uint32(len(l.classes))
	}
	return l
}

// apportion splits total into len(weights) parts of at least floor each,
// the rest in proportion to the weights; the parts sum to total.
func apportion[T int | float64](total, floor int, weights []T, sum float64) []int {
	out := make([]int, len(weights))
	rest := total - floor*len(weights)
	given := 0
	for i, w := range weights {
		out[i] = floor + int(float64(rest)*float64(w)/sum)
		given += out[i]
	}
	for i := 0; given < total; i = (i + 1) % len(out) {
		out[i]++
		given++
	}
	return out
}

func className(grade, idx int) string {
	s := strconv.Itoa(grade)
	if idx < 26 {
		return s + string(rune('A'+idx))
	}
	return s + "-" + strconv.Itoa(idx+1)
}

// schoolNames returns n distinct school names ("Bjørkelia skole").
func schoolNames(seed uint64, n int) []word {
	combos := len(schoolFirst) * len(schoolSecond)
	off := int(hash(seed, saltSchool, 0, 2) % uint64(combos))
	out := make([]word, n)
	for i := range out {
		// 7 is coprime with the number of combinations (320), so the first
		// 320 names are distinct; beyond that a number tells them apart.
		c := (off + 7*i) % combos
		f, s := schoolFirst[c%len(schoolFirst)], schoolSecond[c/len(schoolFirst)]
		name := f.xml + s.xml + " skole"
		if i >= combos {
			name += " " + strconv.Itoa(i/combos+1)
		}
		out[i] = word{xml: name, ascii: f.ascii + s.ascii}
	}
	return out
}
