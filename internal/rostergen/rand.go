package rostergen

import "strconv"

// Every random choice is derived from the seed through these functions, so a
// value depends only on (seed, what it is for, whose it is, which version).

const golden = 0x9E3779B97F4A7C15

// mix is the splitmix64 finaliser: a bijective scrambling of 64 bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash derives a value for (seed, salt, id, ver).
func hash(seed, salt, id, ver uint64) uint64 {
	return mix(mix(mix(seed^salt*golden)+id*0xD6E8FEB86659FD93) ^ ver*golden)
}

// Salts separate the uses of hash.
const (
	saltGender uint64 = iota + 1
	saltGiven
	saltGiven2
	saltFamily
	saltPhone
	saltMailNo
	saltNIN
	saltBirth
	saltSpecial
	saltBase
	saltGen
	saltSchool
	saltFaglaerer
	saltLang
)

// rng is a splitmix64 stream.
type rng struct{ s uint64 }

func newRNG(seed, salt, n uint64) *rng { return &rng{s: hash(seed, salt, n, 0)} }

func (r *rng) next() uint64 {
	r.s += golden
	return mix(r.s)
}

// intn returns a value in [0, n); n must be in (0, 2^32).
func (r *rng) intn(n int) int {
	return int(((r.next() >> 32) * uint64(n)) >> 32)
}

// chance reports true with probability p.
func (r *rng) chance(p float64) bool {
	return float64(r.next()>>11) < p*(1<<53)
}

// pick returns hash-derived index in [0, n).
func pick(h uint64, n int) int { return int(((h >> 32) * uint64(n)) >> 32) }

// appendDate appends the ISO date (YYYY-MM-DD) of a day counted from
// 1970-01-01 (Howard Hinnant's civil_from_days).
func appendDate(b []byte, days int64) []byte {
	y, m, d := civil(days)
	if y >= 0 && y < 10000 {
		b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
	} else {
		b = strconv.AppendInt(b, y, 10)
	}
	return append(b, '-', byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

func civil(days int64) (y int64, m, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// daysFromCivil is the inverse of civil.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mm := int64(m)
	if mm > 2 {
		mm -= 3
	} else {
		mm += 9
	}
	doy := (153*mm+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

var ninW1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
var ninW2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}

// appendNIN appends a synthetic Norwegian national identity number for a
// person born on the given day: DDMMYY with 80 added to the month (the
// convention of the Norwegian test-data register, so it never names a real
// person), three individual digits (odd third digit for men) and the two
// mod-11 control digits. Persons born on days 1-9 get a leading zero.
func appendNIN(b []byte, born int64, male bool, h uint64) []byte {
	y, m, d := civil(born)
	var dig [11]int
	dig[0], dig[1] = d/10, d%10
	mm := m + 80
	dig[2], dig[3] = mm/10, mm%10
	dig[4], dig[5] = int(y%100)/10, int(y%100)%10
	lo := 0 // individual numbers 000-499 for 1900-1999, 500-999 for 2000-2039
	if y >= 2000 {
		lo = 500
	}
	start := int(h % 250)
	for i := 0; i < 250; i++ {
		ind := lo + 2*((start+i)%250)
		if male {
			ind++
		}
		dig[6], dig[7], dig[8] = ind/100, ind/10%10, ind%10
		s := 0
		for j, w := range ninW1 {
			s += dig[j] * w
		}
		k1 := (11 - s%11) % 11
		if k1 == 10 {
			continue
		}
		dig[9] = k1
		s = 0
		for j, w := range ninW2 {
			s += dig[j] * w
		}
		k2 := (11 - s%11) % 11
		if k2 == 10 {
			continue
		}
		dig[10] = k2
		for _, v := range dig {
			b = append(b, byte('0'+v))
		}
		return b
	}
	// Unreachable in practice: some individual number always fits.
	return append(b, "00000000000"...)
}

// orgNumber returns a 9-digit organisation number with a valid mod-11
// control digit, starting with 9 like those of public bodies.
func orgNumber(h uint64) string {
	for ; ; h = mix(h) {
		var dig [9]int
		dig[0] = 9
		v := h
		for i := 1; i < 8; i++ {
			dig[i] = int(v % 10)
			v /= 10
		}
		w := [8]int{3, 2, 7, 6, 5, 4, 3, 2}
		s := 0
		for i, x := range w {
			s += dig[i] * x
		}
		k := (11 - s%11) % 11
		if k == 10 {
			continue
		}
		dig[8] = k
		b := make([]byte, 9)
		for i, x := range dig {
			b[i] = byte('0' + x)
		}
		return string(b)
	}
}
