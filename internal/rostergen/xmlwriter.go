package rostergen

import (
	"context"
	"io"
	"strconv"
	"strings"
)

// xw collects XML in a buffer and hands it to the underlying writer in
// chunks of about flushAt bytes. Records are appended to buf directly
// (strings are pre-escaped or escaped by appendEscaped); flush checks the
// context, so a cancelled write stops within one chunk.
type xw struct {
	buf  []byte
	w    io.Writer
	n    int64
	err  error
	ctx  context.Context
	done <-chan struct{}
}

const flushAt = 64 << 10

func newXW(ctx context.Context, w io.Writer) *xw {
	return &xw{buf: make([]byte, 0, flushAt+8<<10), w: w, ctx: ctx, done: ctx.Done()}
}

// full flushes when the buffer holds a chunk and reports whether writing
// may go on.
func (x *xw) full() bool {
	if len(x.buf) >= flushAt {
		x.flush()
	}
	return x.err == nil
}

func (x *xw) flush() {
	if x.err != nil {
		return
	}
	select {
	case <-x.done:
		x.err = x.ctx.Err()
		return
	default:
	}
	if len(x.buf) == 0 {
		return
	}
	n, err := x.w.Write(x.buf)
	x.n += int64(n)
	if err == nil && n < len(x.buf) {
		err = io.ErrShortWrite
	}
	x.err = err
	x.buf = x.buf[:0]
}

// appendEscaped appends s with the five XML special characters escaped.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&quot;"
		case '\'':
			rep = "&apos;"
		default:
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, rep...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

func escapeString(s string) string {
	if !strings.ContainsAny(s, `&<>"'`) {
		return s
	}
	return string(appendEscaped(nil, s))
}

func appendUint(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }

// fragments are the constant pieces of one municipality's XML.
type fragments struct {
	sidOpen     string   // <sourcedid><source>SRC</source><id>
	memberOpen  string   // <member><sourcedid><source>SRC</source><id>
	groupTF     string   // the school year's timeframe of a group
	schoolRel   []string // per school: the relationship pointing at it
	ownerRel    string   // the relationship pointing at the school owner
	ownerID     string
	mailDomain  string // "@fjordvik.kommune.no"
	pupilDomain string // "@elev.fjordvik.kommune.no"
	roleEnd     string // </begin><end>END</end></timeframe></role></member>
}

const sidClose = "</id></sourcedid>"

func newFragments(m *Municipality) fragments {
	var f fragments
	f.sidOpen = "<sourcedid><source>" + m.source + "</source><id>"
	f.memberOpen = "\n  <member>" + f.sidOpen
	end := string(appendDate(nil, yearEnd))
	begin := string(appendDate(nil, yearBegin))
	f.groupTF = `<timeframe><begin restrict="0">` + begin + `</begin><end restrict="0">` + end +
		`</end><adminperiod>` + adminPeriod + `</adminperiod></timeframe>`
	f.ownerID = "KOMMUNE-" + m.munNr
	f.ownerRel = `<relationship relation="1">` + f.sidOpen + f.ownerID + sidClose + `<label>` + m.name + `</label></relationship>`
	f.schoolRel = make([]string, len(m.lay.schools))
	for i := range m.lay.schools {
		s := &m.lay.schools[i]
		f.schoolRel[i] = `<relationship relation="1">` + f.sidOpen + "SKOLE-" + strconv.Itoa(s.num) + sidClose +
			`<label>` + s.name.xml + `</label></relationship>`
	}
	f.mailDomain = "@" + m.slug + ".kommune.no"
	f.pupilDomain = "@elev." + m.slug + ".kommune.no"
	f.roleEnd = "</begin><end>" + end + "</end></timeframe></role></member>"
	return f
}

// dayOf returns the day (from 1970-01-01) of generation g: generation 0 is
// the first school day at 06:00 and each generation is one hour later.
func dayOf(g uint64) int64 { return yearBegin + int64((6+g)/24) }
