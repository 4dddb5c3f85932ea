package pifu

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The scanner is a hand-written XML tokenizer over a growable buffer. A token
// (start tag, end tag, text run, CDATA section, comment) is always whole in
// the buffer when it is returned, so names, attribute values and text are
// slices of the buffer that stay valid until the next call of next. The
// buffer grows to hold the largest token, up to maxTok; the rest of the
// document streams through it.

type tokKind uint8

const (
	tokNone tokKind = iota
	tokStart
	tokEnd
	tokText
	tokEOF
)

type attr struct{ name, value []byte }

type scanner struct {
	src    io.Reader
	buf    []byte
	r, w   int   // unread input is buf[r:w]
	eof    bool  // src is exhausted (or failed: rerr)
	rerr   error // read error other than io.EOF
	full   bool  // the last more() failed because a token outgrew maxTok
	maxTok int
	utf8   bool // validate text as UTF-8 (false once converted from Latin-1)

	// Line accounting: buf[cnt] is at line, col (col counts runes from the
	// line start, 0-based). Advanced lazily by pos.
	cnt, line, col int

	// The current token.
	kind  tokKind
	start int // buffer index of the token's first byte
	name  []byte
	attrs []attr
	empty bool // a start tag that closes itself
	text  []byte
	cdata bool

	scratch []byte // decoded text when it had entities or CRs
}

func (s *scanner) reset(src io.Reader, bufSize, maxTok int) {
	s.src = src
	s.buf = make([]byte, bufSize)
	s.maxTok = maxTok
	s.line = 1
	s.utf8 = true
}

// pos returns the 1-based line and column (in characters) of buf[i]. Calls
// must not go backwards past the last position asked for; a call that does
// gets that last position.
func (s *scanner) pos(i int) (line, col int) {
	if i > s.cnt {
		seg := s.buf[s.cnt:i]
		if n := bytes.Count(seg, nl); n > 0 {
			k := bytes.LastIndexByte(seg, '\n')
			s.line += n
			s.col = utf8.RuneCount(seg[k+1:])
		} else {
			s.col += utf8.RuneCount(seg)
		}
		s.cnt = i
	}
	return s.line, s.col + 1
}

var nl = []byte{'\n'}

// errAt makes a SyntaxError at buffer index i.
func (s *scanner) errAt(i int, format string, args ...any) error {
	l, c := s.pos(i)
	return &SyntaxError{Line: l, Column: c, Msg: fmt.Sprintf(format, args...)}
}

// more reads more input into the buffer, keeping the unread part. It reports
// false when nothing more can come: at the end of input, on a read error
// (rerr), or when the buffer may not grow further (full).
func (s *scanner) more() bool {
	if s.eof {
		return false
	}
	if s.r > 0 {
		s.pos(s.r)
		copy(s.buf, s.buf[s.r:s.w])
		s.w -= s.r
		s.cnt -= s.r
		s.r = 0
	}
	grew := false
	if s.w == len(s.buf) {
		limit := s.maxTok + 1 // the token and one byte past it
		if len(s.buf) >= limit {
			s.full = true
			return false
		}
		nb := make([]byte, min(2*len(s.buf), limit))
		copy(nb, s.buf[:s.w])
		s.buf = nb
		grew = true
	}
	for zero, w0 := 0, s.w; ; {
		n, err := s.src.Read(s.buf[s.w:])
		s.w += n
		if err != nil {
			s.eof = true
			if !errors.Is(err, io.EOF) {
				s.rerr = err
			}
			return s.w > w0
		}
		if n == 0 {
			if zero++; zero > 100 {
				s.eof, s.rerr = true, io.ErrNoProgress
				return false
			}
			continue
		}
		// A token that outgrew the buffer is likely long: fill the new
		// buffer so that it is not rescanned once per small read.
		if !grew || s.w == len(s.buf) {
			return true
		}
	}
}

// stuck is the error for a token that more() could not complete.
func (s *scanner) stuck(what string) error {
	switch {
	case s.full:
		return s.errAt(s.r, "%s longer than the limit of %d bytes", what, s.maxTok)
	case s.rerr != nil:
		l, _ := s.pos(s.r)
		return fmt.Errorf("pifu: reading the document at line %d: %w", l, s.rerr)
	default:
		return s.errAt(s.r, "unexpected end of document in %s", what)
	}
}

// next scans the next token into s.kind and its fields. Comments, processing
// instructions and the DOCTYPE are skipped.
func (s *scanner) next() error {
	s.attrs = s.attrs[:0]
	s.empty, s.cdata = false, false
	for {
		if s.r >= s.w {
			if !s.more() {
				if s.rerr != nil {
					return s.stuck("the document")
				}
				s.kind = tokEOF
				s.start = s.r
				return nil
			}
			continue
		}
		if s.buf[s.r] != '<' {
			return s.scanText()
		}
		if s.w-s.r < 2 {
			if !s.more() {
				return s.stuck("a tag")
			}
			continue
		}
		switch s.buf[s.r+1] {
		case '/':
			return s.scanEnd()
		case '!':
			isText, err := s.scanBang()
			if err != nil || isText {
				return err
			}
		case '?':
			if err := s.skipUntil("?>", "a processing instruction"); err != nil {
				return err
			}
		default:
			return s.scanStart()
		}
	}
}

func (s *scanner) scanStart() error {
	for {
		n, err := s.parseStart(s.buf[s.r:s.w])
		if err != nil {
			return err
		}
		if n > 0 {
			s.kind, s.start = tokStart, s.r
			s.r += n
			return nil
		}
		if !s.more() {
			return s.stuck("a start tag")
		}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// isNameStart accepts what may begin an XML name (non-ASCII letters loosely).
func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

// nameEnd returns the end of the name that starts b, len(b) if it runs to the
// end of b.
func nameEnd(b []byte) int {
	for i, c := range b {
		if nameStop[c] {
			return i
		}
	}
	return len(b)
}

// nameStop marks the bytes that end a name.
var nameStop = func() (t [256]bool) {
	for _, c := range []byte(" \n\t\r>/=<\"'") {
		t[c] = true
	}
	return t
}()

// trimSpace trims XML whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// parseStart parses the start tag at the beginning of b. It returns the tag's
// length, or 0 and no error when b does not hold the whole tag.
func (s *scanner) parseStart(b []byte) (int, error) {
	s.attrs = s.attrs[:0]
	if !isNameStart(b[1]) {
		return 0, s.errAt(s.r+1, "invalid character %q after <", b[1])
	}
	i := 1 + nameEnd(b[1:])
	if i == len(b) {
		return 0, nil
	}
	s.name = b[1:i]
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return 0, nil
		}
		switch c := b[i]; {
		case c == '>':
			return i + 1, nil
		case c == '/':
			if i+1 >= len(b) {
				return 0, nil
			}
			if b[i+1] != '>' {
				return 0, s.errAt(s.r+i, "expected /> in <%s>", s.name)
			}
			s.empty = true
			return i + 2, nil
		case !isNameStart(c):
			return 0, s.errAt(s.r+i, "invalid character %q in <%s>", c, s.name)
		}
		j := i + nameEnd(b[i:])
		if j >= len(b) {
			return 0, nil
		}
		an := b[i:j]
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) {
			return 0, nil
		}
		if b[j] != '=' {
			return 0, s.errAt(s.r+j, "attribute %s in <%s> has no value", an, s.name)
		}
		j++
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) {
			return 0, nil
		}
		q := b[j]
		if q != '"' && q != '\'' {
			return 0, s.errAt(s.r+j, "value of attribute %s in <%s> is not quoted", an, s.name)
		}
		e := bytes.IndexByte(b[j+1:], q)
		if e < 0 {
			return 0, nil
		}
		v := b[j+1 : j+1+e]
		if bytes.IndexByte(v, '<') >= 0 {
			return 0, s.errAt(s.r+j, "< in the value of attribute %s", an)
		}
		if s.utf8 && !utf8.Valid(v) {
			return 0, s.errAt(s.r+j, "invalid UTF-8 in the value of attribute %s", an)
		}
		if bytes.IndexByte(v, '&') >= 0 {
			dec, err := s.unescape(nil, v, s.r+j+1)
			if err != nil {
				return 0, err
			}
			v = dec
		}
		s.attrs = append(s.attrs, attr{name: an, value: v})
		i = j + 2 + e
		if i < len(b) && !isSpace(b[i]) && b[i] != '>' && b[i] != '/' {
			return 0, s.errAt(s.r+i, "no space between attributes in <%s>", s.name)
		}
	}
}

func (s *scanner) scanEnd() error {
	for {
		b := s.buf[s.r:s.w]
		if i := bytes.IndexByte(b, '>'); i >= 0 {
			name := b[2:i]
			for len(name) > 0 && isSpace(name[len(name)-1]) {
				name = name[:len(name)-1]
			}
			if len(name) == 0 || !isNameStart(name[0]) || nameEnd(name) != len(name) {
				return s.errAt(s.r, "malformed end tag </%s>", name)
			}
			s.kind, s.start, s.name = tokEnd, s.r, name
			s.r += i + 1
			return nil
		}
		if !s.more() {
			return s.stuck("an end tag")
		}
	}
}

// scanText scans character data up to the next '<' (or the end of input).
func (s *scanner) scanText() error {
	off := 0
	for {
		b := s.buf[s.r:s.w]
		i := bytes.IndexByte(b[off:], '<')
		if i >= 0 || !s.more() {
			if i < 0 {
				if s.rerr != nil || s.full {
					return s.stuck("text")
				}
				b = s.buf[s.r:s.w]
				i = len(b) - off
			}
			t := b[:off+i]
			s.kind, s.start = tokText, s.r
			if err := s.setText(t, s.r, true); err != nil {
				return err
			}
			s.r += off + i
			return nil
		}
		off = len(b)
	}
}

// setText makes t (at buffer index at) the current text, decoding entities
// (when decode) and normalizing line ends.
func (s *scanner) setText(t []byte, at int, decode bool) error {
	if s.utf8 && !utf8.Valid(t) {
		return s.errAt(at, "invalid UTF-8 in text")
	}
	amp := decode && bytes.IndexByte(t, '&') >= 0
	if !amp && bytes.IndexByte(t, '\r') < 0 {
		s.text = t
		return nil
	}
	s.scratch = s.scratch[:0]
	if amp {
		var err error
		if s.scratch, err = s.unescape(s.scratch, t, at); err != nil {
			return err
		}
	} else {
		s.scratch = append(s.scratch, t...)
	}
	s.scratch = normalizeCR(s.scratch)
	s.text = s.scratch
	return nil
}

// normalizeCR turns \r\n and lone \r into \n in place.
func normalizeCR(b []byte) []byte {
	j := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		}
		b[j] = c
		j++
	}
	return b[:j]
}

// unescape appends t to dst with character and predefined entity references
// replaced. at is t's buffer index, for error positions.
func (s *scanner) unescape(dst, t []byte, at int) ([]byte, error) {
	for {
		i := bytes.IndexByte(t, '&')
		if i < 0 {
			return append(dst, t...), nil
		}
		dst = append(dst, t[:i]...)
		at += i
		t = t[i:]
		e := bytes.IndexByte(t, ';')
		if e < 0 || e > 12 {
			return nil, s.errAt(at, "entity reference without ';'")
		}
		ref := t[1:e]
		switch string(ref) {
		case "lt":
			dst = append(dst, '<')
		case "gt":
			dst = append(dst, '>')
		case "amp":
			dst = append(dst, '&')
		case "apos":
			dst = append(dst, '\'')
		case "quot":
			dst = append(dst, '"')
		default:
			r, ok := charRef(ref)
			if !ok {
				return nil, s.errAt(at, "unknown entity &%s;", ref)
			}
			dst = utf8.AppendRune(dst, r)
		}
		t = t[e+1:]
		at += e + 1
	}
}

// charRef decodes the body of &#NN; or &#xHH;.
func charRef(ref []byte) (rune, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	ref = ref[1:]
	base := rune(10)
	if ref[0] == 'x' {
		base, ref = 16, ref[1:]
	}
	if len(ref) == 0 {
		return 0, false
	}
	var r rune
	for _, c := range ref {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
		if r > utf8.MaxRune {
			return 0, false
		}
	}
	// XML Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
	ok := r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000
	return r, ok
}

// scanBang handles <!-- -->, <![CDATA[ ]]> and <!DOCTYPE >. It reports
// whether the token is text (a CDATA section).
func (s *scanner) scanBang() (bool, error) {
	for s.w-s.r < 9 {
		if !s.more() {
			break
		}
	}
	b := s.buf[s.r:s.w]
	switch {
	case bytes.HasPrefix(b, []byte("<!--")):
		return false, s.skipUntil("-->", "a comment")
	case bytes.HasPrefix(b, []byte("<![CDATA[")):
		start, err := s.find("]]>", 9, "a CDATA section")
		if err != nil {
			return false, err
		}
		s.kind, s.start, s.cdata = tokText, s.r, true
		if err := s.setText(s.buf[s.r+9:s.r+start], s.r+9, false); err != nil {
			return false, err
		}
		s.r += start + 3
		return true, nil
	case bytes.HasPrefix(b, []byte("<!DOCTYPE")):
		return false, s.skipDoctype()
	case len(b) < 9 && (bytes.HasPrefix([]byte("<!--"), b) || bytes.HasPrefix([]byte("<![CDATA["), b) ||
		bytes.HasPrefix([]byte("<!DOCTYPE"), b)):
		return false, s.stuck("a <! construct")
	default:
		return false, s.errAt(s.r, "unsupported markup starting <!")
	}
}

// find returns the index (from s.r) of sep, searching from s.r+from and
// reading more as needed.
func (s *scanner) find(sep string, from int, what string) (int, error) {
	off := from
	for {
		if i := bytes.Index(s.buf[s.r+off:s.w], []byte(sep)); i >= 0 {
			return off + i, nil
		}
		off = max(from, s.w-s.r-len(sep)+1)
		if !s.more() {
			return 0, s.stuck(what)
		}
	}
}

func (s *scanner) skipUntil(sep, what string) error {
	i, err := s.find(sep, 2, what)
	if err != nil {
		return err
	}
	s.r += i + len(sep)
	return nil
}

// skipDoctype skips <!DOCTYPE ...> including an internal subset in [ ].
// Entities it declares are not supported: a reference to one is an error.
func (s *scanner) skipDoctype() error {
	gt, err := s.find(">", 9, "the DOCTYPE")
	if err != nil {
		return err
	}
	if lb := bytes.IndexByte(s.buf[s.r:s.r+gt], '['); lb >= 0 {
		rb, err := s.find("]", lb, "the DOCTYPE")
		if err != nil {
			return err
		}
		if gt, err = s.find(">", rb, "the DOCTYPE"); err != nil {
			return err
		}
	}
	s.r += gt + 1
	return nil
}

// attr returns the value of the attribute with the given local name.
func (s *scanner) attr(local string) []byte {
	for _, a := range s.attrs {
		if string(localName(a.name)) == local {
			return a.value
		}
	}
	return nil
}

// localName strips a namespace prefix.
func localName(b []byte) []byte {
	if i := bytes.IndexByte(b, ':'); i >= 0 {
		return b[i+1:]
	}
	return b
}
