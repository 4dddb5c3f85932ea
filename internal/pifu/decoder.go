package pifu

import (
	"bytes"
	"fmt"
	"io"
	"unsafe"
)

// SyntaxError is a document that does not parse: malformed XML, a document
// cut short, a token over the size limit, an unsupported encoding. Line and
// Column (in characters) are 1-based and point at or near the fault.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Properties is the document's <properties> header.
type Properties struct {
	Lang       string      `json:"lang,omitempty"`
	Comments   string      `json:"comments,omitempty"`
	Datasource string      `json:"datasource,omitempty"`
	Targets    []string    `json:"targets,omitempty"`
	Type       string      `json:"type,omitempty"` // full, delta, event
	Datetime   string      `json:"datetime,omitempty"`
	Extensions []Extension `json:"extensions,omitempty"`
}

// Config bounds what a Decoder accepts. The zero value means the defaults.
type Config struct {
	// MaxTokenBytes caps one token: a text node, a tag, a comment. Default
	// 16 MiB. The decoder's buffer grows to the largest token seen.
	MaxTokenBytes int
	// MaxDepth caps element nesting. Default 256.
	MaxDepth int
	// BufferSize is the initial read buffer. Default 64 KiB.
	BufferSize int
}

// Defaults of Config.
const (
	DefaultMaxTokenBytes = 16 << 20
	DefaultMaxDepth      = 256
	DefaultBufferSize    = 64 << 10
)

func (c Config) withDefaults() Config {
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	return c
}

// Validate reports a Config that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxTokenBytes < 64:
		return fmt.Errorf("pifu: MaxTokenBytes %d is below 64", c.MaxTokenBytes)
	case c.MaxDepth < 8:
		return fmt.Errorf("pifu: MaxDepth %d is below 8", c.MaxDepth)
	case c.BufferSize < 16:
		return fmt.Errorf("pifu: BufferSize %d is below 16", c.BufferSize)
	case c.BufferSize > c.MaxTokenBytes:
		return fmt.Errorf("pifu: BufferSize %d is above MaxTokenBytes %d", c.BufferSize, c.MaxTokenBytes)
	}
	return nil
}

// Decoder reads a PIFU-IMS document as a stream of records. Its memory does
// not grow with the document: it holds one buffer (as large as the largest
// token), the record being built, and an intern table of at most
// maxInterned short strings. A Decoder is not safe for concurrent use.
//
// Elements are matched on their local names, so the 1.1, 1.2 and 1.3
// namespaces, any prefix and no namespace at all read alike.
type Decoder struct {
	s       scanner
	cfg     Config
	started bool
	err     error // sticky: returned by every Next after the first failure

	stack []frame
	names []byte // qualified names of the open elements, for end-tag checks
	root  int    // 0 before the root, 1 inside it, 2 after it

	queue []Record
	qhead int

	text       []byte // text of the current leaf element
	collecting bool
	capture    int // depth of the extension element being captured, 0 if none
	capText    []byte
	ext        Extension

	props     Properties
	propsDone bool

	b builder

	strs  map[string]string
	arena []byte
}

type frame struct {
	id        elem
	off, size int32 // name in Decoder.names
}

// NewDecoder reads a PIFU-IMS document from r as a stream, with the default
// Config. It does not close r.
func NewDecoder(r io.Reader) *Decoder {
	d, _ := NewDecoderConfig(r, Config{})
	return d
}

// NewDecoderConfig is NewDecoder with limits of the caller's choice.
func NewDecoderConfig(r io.Reader, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	d := &Decoder{cfg: cfg, strs: make(map[string]string, 256)}
	d.s.reset(r, cfg.BufferSize, cfg.MaxTokenBytes)
	return d, nil
}

// Properties is the <properties> header (datasource, type, datetime, lang),
// known once the first record or io.EOF came back from Next.
func (d *Decoder) Properties() Properties { return d.props }

// Next returns the next record, io.EOF after the last one. Each returned
// record is freshly allocated (the caller may keep it). A document that does
// not parse yields a *SyntaxError with Line and Column; a document cut short
// yields a *SyntaxError too, never io.EOF as if it were whole. A failure of
// the underlying reader is returned wrapped (errors.Is finds it). After an
// error every further call returns the same error.
func (d *Decoder) Next() (Record, error) {
	for {
		if d.qhead < len(d.queue) {
			r := d.queue[d.qhead]
			d.queue[d.qhead] = Record{}
			d.qhead++
			return r, nil
		}
		d.queue, d.qhead = d.queue[:0], 0
		if d.err != nil {
			return Record{}, d.err
		}
		d.err = d.step()
	}
}

// step scans tokens until at least one record is queued.
func (d *Decoder) step() error {
	s := &d.s
	if !d.started {
		d.started = true
		if err := s.sniff(); err != nil {
			return err
		}
	}
	for len(d.queue) == 0 {
		if err := s.next(); err != nil {
			return err
		}
		var err error
		switch s.kind {
		case tokStart:
			err = d.onStart()
		case tokEnd:
			err = d.onEnd()
		case tokText:
			err = d.onText()
		case tokEOF:
			return d.onEOF()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) onEOF() error {
	switch {
	case d.root == 0:
		return d.s.errAt(d.s.r, "no <enterprise> element: the document is empty")
	case len(d.stack) > 0:
		f := d.stack[len(d.stack)-1]
		return d.s.errAt(d.s.r, "unexpected end of document: <%s> is not closed", d.names[f.off:f.off+f.size])
	}
	return io.EOF
}

func (d *Decoder) onStart() error {
	s := &d.s
	local := localName(s.name)
	switch {
	case d.root == 2:
		return s.errAt(s.start, "element <%s> after the end of the root element", s.name)
	case d.root == 0:
		if string(local) != "enterprise" {
			return s.errAt(s.start, "root element is <%s>, want <enterprise>", s.name)
		}
		d.root = 1
	case len(d.stack) >= d.cfg.MaxDepth:
		return s.errAt(s.start, "elements nested deeper than %d", d.cfg.MaxDepth)
	}
	id := lookup(local)
	d.stack = append(d.stack, frame{id: id, off: int32(len(d.names)), size: int32(len(s.name))})
	d.names = append(d.names, s.name...)
	if d.capture > 0 {
		d.capText = append(d.capText, ' ') // text of two elements is two words
	} else {
		d.collecting = leaf[id]
		d.text = d.text[:0]
		if err := d.open(id); err != nil {
			return err
		}
	}
	if s.empty {
		return d.close()
	}
	return nil
}

func (d *Decoder) onEnd() error {
	s := &d.s
	if len(d.stack) == 0 {
		return s.errAt(s.start, "end tag </%s> without a start tag", s.name)
	}
	f := d.stack[len(d.stack)-1]
	if open := d.names[f.off : f.off+f.size]; !bytes.Equal(open, s.name) {
		return s.errAt(s.start, "element <%s> closed by </%s>", open, s.name)
	}
	return d.close()
}

// close ends the innermost element.
func (d *Decoder) close() error {
	n := len(d.stack)
	var err error
	if d.capture > 0 {
		if n == d.capture {
			d.finishCapture()
		} else {
			d.capText = append(d.capText, ' ')
		}
	} else {
		err = d.closeElem(d.stack[n-1].id)
	}
	f := d.stack[n-1]
	d.names = d.names[:f.off]
	d.stack = d.stack[:n-1]
	d.collecting = false
	if n == 1 {
		d.root = 2
	}
	return err
}

func (d *Decoder) onText() error {
	s := &d.s
	if len(d.stack) == 0 {
		if s.cdata || len(trimSpace(s.text)) > 0 {
			return s.errAt(s.start, "text outside the root element")
		}
		return nil
	}
	switch {
	case d.capture > 0:
		d.capText = append(d.capText, s.text...)
	case d.collecting:
		d.text = append(d.text, s.text...)
	}
	return nil
}

// up returns the id of the element k levels above the innermost one.
func (d *Decoder) up(k int) elem {
	if i := len(d.stack) - 1 - k; i >= 0 {
		return d.stack[i].id
	}
	return eNone
}

// startCapture keeps the innermost element (an extension this package does
// not model) as an Extension: its name, type and text content.
func (d *Decoder) startCapture() {
	s := &d.s
	typ := s.attr("type")
	if typ == nil {
		typ = s.attr("source")
	}
	d.capture = len(d.stack)
	d.capText = d.capText[:0]
	d.ext = Extension{Name: d.intern(localName(s.name)), Type: d.intern(typ)}
	d.collecting = false
}

func (d *Decoder) finishCapture() {
	d.capture = 0
	d.ext.Value = d.str(collapseSpace(d.capText))
	d.b.addExtension(d.up(2), d.ext, &d.props)
}

// record queues a finished record.
func (d *Decoder) record(r Record) { d.queue = append(d.queue, r) }

// maxInterned bounds the intern table; maxInternLen the strings it holds.
const (
	maxInterned  = 8192
	maxInternLen = 64
)

// intern returns b as a string, shared with earlier equal values. For the
// short values that repeat all over a document (sources, types, codes).
func (d *Decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if v, ok := d.strs[string(b)]; ok {
		return v
	}
	v := string(b)
	if len(d.strs) < maxInterned && len(b) <= maxInternLen {
		d.strs[v] = v
	}
	return v
}

const arenaChunk = 32 << 10

// str returns b as a string. Short strings share chunks of memory (never
// written again once handed out), which saves an allocation per value; a
// record kept by the caller keeps its chunk alive.
func (d *Decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaChunk/8 {
		return string(b)
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, arenaChunk)
	}
	start := len(d.arena)
	d.arena = append(d.arena, b...)
	return unsafe.String(&d.arena[start], len(b))
}

// val is the trimmed text of the current leaf element.
func (d *Decoder) val() []byte { return trimSpace(d.text) }

// attrInterned is the interned value of an attribute of the current tag.
func (d *Decoder) attrInterned(local string) string { return d.intern(d.s.attr(local)) }

// collapseSpace trims b and turns each run of XML whitespace into one space,
// in place.
func collapseSpace(b []byte) []byte {
	j, space := 0, false
	for _, c := range b {
		if isSpace(c) {
			space = j > 0
			continue
		}
		if space {
			b[j] = ' '
			j++
			space = false
		}
		b[j] = c
		j++
	}
	return b[:j]
}
