package rostergen

import (
	"strings"
	"unicode"
)

// word is a name as written into the XML (escaped) and as used in e-mail
// addresses and user names (lower case ASCII).
type word struct {
	xml   string
	ascii string
}

type wordList []word

func newWordList(names ...string) wordList {
	l := make(wordList, len(names))
	for i, n := range names {
		l[i] = word{xml: escapeString(n), ascii: asciiLower(n)}
	}
	return l
}

var (
	femaleGiven = newWordList(
		"Åse", "Sølvi", "Kari", "Ingrid", "Sigrid", "Ragnhild", "Mari", "Nora", "Emma", "Sofie",
		"Ingeborg", "Astrid", "Hedda", "Maja", "Tiril", "Selma", "Ylva", "Åshild", "Bjørg", "Synnøve",
		"Guro", "Silje", "Marte", "Eline", "Thea", "Live", "Oda", "Frøya", "Linnéa", "Vårin",
		"Hanne", "Turid", "Solveig", "Målfrid", "Gunnhild", "Jorunn", "Aisha", "Zahra", "Julia", "Amalie",
	)
	maleGiven = newWordList(
		"Bjørn", "Øystein", "Håkon", "Ola", "Per", "Jens", "Lars", "Magnus", "Sindre", "Eirik",
		"Trygve", "Øyvind", "Geir", "Tor", "Sverre", "Jørgen", "Ståle", "Åsmund", "Kåre", "Gaute",
		"Odin", "Aksel", "Filip", "Jonas", "Tobias", "Henrik", "Sigurd", "Vebjørn", "Torbjørn", "Espen",
		"Knut", "Arne", "Rune", "Ørjan", "Mats", "Ali", "Mohammed", "Noah", "Emil", "Even",
	)
	familyNames = newWordList(
		"Ødegård", "Kværnes", "Sæther", "Bjørnstad", "Løvås", "Håland", "Aasen", "Nilsen", "Hansen", "Johansen",
		"Olsen", "Larsen", "Andersen", "Pedersen", "Berg", "Haugen", "Hagen", "Dahl", "Lie", "Strand",
		"Bakke", "Moen", "Solberg", "Eide", "Brekke", "Sørensen", "Jørgensen", "Næss", "Kjær", "Frøland",
		"Grønli", "Fjære", "Rønning", "Sæbø", "Bråten", "Hø", "Ås", "Sørlie", "Tønnessen", "Rød",
		"Mæland", "Fosså", "Vågen", "Lunde", "Halvorsen", "Kristiansen", "Nygård", "Østby", "Ødegaard", "Skjærvø",
		"Ruud", "Gjerde", "Nordbø", "Heggø", "Bøe", "Skår", "Sandvær", "Åmodt", "Holm", "Iversen",
	)
	schoolFirst = newWordList(
		"Bjørke", "Sæter", "Fjell", "Kvær", "Lille", "Øvre", "Nedre", "Granli", "Haug", "Bakke",
		"Solå", "Fosse", "Tjern", "Myr", "Strand", "Berg", "Åker", "Furu", "Lyng", "Skogs",
	)
	schoolSecond = newWordList(
		"lia", "bakken", "haugen", "vollen", "åsen", "moen", "dalen", "sletta", "nes", "vik",
		"tun", "gård", "heia", "løkka", "støl", "jordet",
	)
	mailDomains = newWordList("example.no", "example.com", "example.org", "example.net")
)

// asciiLower folds a name into lower-case ASCII for e-mail addresses and user
// names: æ→ae, ø→o, å→a, accents dropped, spaces and anything else removed.
func asciiLower(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == 'æ':
			b.WriteString("ae")
		case r == 'ø':
			b.WriteByte('o')
		case r == 'å', r == 'á', r == 'à', r == 'ä':
			b.WriteByte('a')
		case r == 'é', r == 'è', r == 'ë':
			b.WriteByte('e')
		case r == 'ö', r == 'ó':
			b.WriteByte('o')
		case r == 'ü', r == 'ú':
			b.WriteByte('u')
		}
	}
	return b.String()
}

// slugOf derives the host label of a municipality from its name: "Fjordvik
// kommune" → "fjordvik". It is at most 17 characters, so that the datasource
// "vfs@<slug>.kommune.no" fits the 32 characters PIFU allows a source.
func slugOf(name string) string {
	n := strings.TrimSpace(name)
	for _, suf := range []string{" kommune", " Kommune", " fylkeskommune", " herad"} {
		n = strings.TrimSuffix(n, suf)
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(n) {
		a := asciiLower(string(r))
		if a == "" {
			if unicode.IsSpace(r) || r == '-' || r == '_' {
				dash = b.Len() > 0
			}
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteString(a)
	}
	s := b.String()
	if len(s) > 17 {
		s = strings.TrimRight(s[:17], "-")
	}
	return s
}

// personName picks the name of a person: the given name(s) are fixed for
// life, the family name changes with each name version and always differs
// from the one before.
type personName struct {
	given1, given2 *word // given2 may be nil
	family         *word
}

func nameOf(seed, kind, id uint64, female bool, ver uint8) personName {
	given := maleGiven
	if female {
		given = femaleGiven
	}
	var n personName
	g := hash(seed, saltGiven, kind<<40|id, 0)
	n.given1 = &given[pick(g, len(given))]
	if g&0xF < 3 { // about one in five has two given names
		i2 := pick(hash(seed, saltGiven2, kind<<40|id, 0), len(given))
		if &given[i2] != n.given1 {
			n.given2 = &given[i2]
		}
	}
	n.family = &familyNames[familyIndex(seed, kind, id, ver)]
	return n
}

// familyIndex moves by a fixed, person-specific step in [1, n) per version,
// so consecutive versions always differ.
func familyIndex(seed, kind, id uint64, ver uint8) int {
	n := len(familyNames)
	i0 := pick(hash(seed, saltFamily, kind<<40|id, 0), n)
	if ver == 0 {
		return i0
	}
	step := 1 + pick(hash(seed, saltFamily, kind<<40|id, 0xFF), n-1)
	return (i0 + int(ver)*step) % n
}
