package pifu

import (
	"bytes"
	"io"
	"strings"
)

// sniff reads the byte order mark and the XML declaration at the start of
// the document and sets the scanner up for the declared encoding: UTF-8 as
// is, ISO-8859-1 converted to UTF-8 as it streams in.
func (s *scanner) sniff() error {
	for s.w-s.r < 6 && s.more() {
	}
	if s.rerr != nil {
		return s.stuck("the XML declaration")
	}
	b := s.buf[s.r:s.w]
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		s.r += 3
		s.cnt = s.r
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}), bytes.HasPrefix(b, []byte{0xFF, 0xFE}),
		bytes.HasPrefix(b, []byte{0, '<'}), bytes.HasPrefix(b, []byte{'<', 0}):
		return s.errAt(s.r, "UTF-16 documents are not supported (want UTF-8 or ISO-8859-1)")
	}
	b = s.buf[s.r:s.w]
	if !bytes.HasPrefix(b, []byte("<?xml")) || len(b) < 6 || !isSpace(b[5]) {
		return nil // no declaration: UTF-8
	}
	end, err := s.find("?>", 5, "the XML declaration")
	if err != nil {
		return err
	}
	decl := s.buf[s.r+5 : s.r+end]
	enc := declEncoding(decl)
	switch strings.ToLower(enc) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		s.r += end + 2
		return nil
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "iso-ir-100", "cp819", "ibm819":
		s.r += end + 2
		// Send what is buffered through the converter again.
		rest := bytes.Clone(s.buf[s.r:s.w])
		s.w = s.r
		s.src = &latin1Reader{r: io.MultiReader(bytes.NewReader(rest), s.src)}
		s.utf8 = false
		return nil
	default:
		return s.errAt(s.r, "unsupported encoding %q (want UTF-8 or ISO-8859-1)", enc)
	}
}

// declEncoding returns the encoding pseudo-attribute of an XML declaration.
func declEncoding(decl []byte) string {
	i := bytes.Index(decl, []byte("encoding"))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(decl[i+len("encoding"):], " \t\r\n")
	if len(rest) == 0 || rest[0] != '=' {
		return ""
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	e := bytes.IndexByte(rest[1:], q)
	if e < 0 {
		return ""
	}
	return string(rest[1 : 1+e])
}

// latin1Reader converts ISO-8859-1 to UTF-8.
type latin1Reader struct {
	r    io.Reader
	in   []byte
	pend []byte // the second byte of a character that did not fit
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(l.pend) > 0 {
		n := copy(p, l.pend)
		l.pend = l.pend[n:]
		return n, nil
	}
	m := max(len(p)/2, 1)
	if cap(l.in) < m {
		l.in = make([]byte, m)
	}
	n, err := l.r.Read(l.in[:m])
	j := 0
	for _, c := range l.in[:n] {
		if c < 0x80 {
			p[j] = c
			j++
			continue
		}
		p[j] = 0xC0 | c>>6
		j++
		if j < len(p) {
			p[j] = 0x80 | c&0x3F
			j++
		} else {
			l.pend = append(l.pend[:0], 0x80|c&0x3F)
		}
	}
	if len(l.pend) > 0 && err != nil {
		// Deliver the pending byte before the error.
		return j, nil
	}
	return j, err
}
