package diff

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The spool holds the changed records of one Run on disk between the pass
// over the new export and the ordered replay, so memory stays bounded even
// when every record is a creation. Every spool file is a sequence of frames:
//
//	uint32 n | op byte | key hash uint64 | content hash uint64 | event id [16]byte | uvarint len(key) | key | JSON | uint32 n
//
// where n is the length of everything between the two lengths. The trailing
// length lets a file be read backwards (deletions are replayed in reverse).
// The event id (the raw bytes of Change.ID) is computed in the pass over the
// export, which waits on the parser anyway, rather than in the replay, which
// competes with the server for the CPU; frames of previous versions (never
// emitted) have a zero id.
type spool struct {
	parent string
	dir    string // created on first use
	files  []*spoolFile
}

type spoolFile struct {
	f    *os.File
	w    *bufio.Writer
	off  int64
	n    int
	name string
}

type frame struct {
	op      Op
	keyHash uint64
	content uint64
	id      [16]byte
	key     string
	object  []byte
}

const frameFixed = 1 + 8 + 8 + 16

func opByte(op Op) byte {
	switch op {
	case Created:
		return 'c'
	case Updated:
		return 'u'
	}
	return 'd'
}

func byteOp(b byte) (Op, bool) {
	switch b {
	case 'c':
		return Created, true
	case 'u':
		return Updated, true
	case 'd':
		return Deleted, true
	}
	return "", false
}

// create opens a new spool file named name.
func (s *spool) create(name string) (*spoolFile, error) {
	if s.dir == "" {
		dir, err := os.MkdirTemp(s.parent, spoolPrefix)
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		s.dir = dir
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	sf := &spoolFile{f: f, w: bufio.NewWriterSize(f, 256<<10), name: name}
	s.files = append(s.files, sf)
	return sf, nil
}

// remove closes and deletes every spool file and the spool directory.
func (s *spool) remove() error {
	var errs []error
	for _, sf := range s.files {
		errs = append(errs, sf.f.Close())
	}
	if s.dir != "" {
		errs = append(errs, os.RemoveAll(s.dir))
	}
	return errors.Join(errs...)
}

// write appends one frame and returns its offset.
func (sf *spoolFile) write(fr frame) (int64, error) {
	var hdr [4 + frameFixed + binary.MaxVarintLen64]byte
	body := frameFixed + varintLen(len(fr.key)) + len(fr.key) + len(fr.object)
	b := binary.LittleEndian.AppendUint32(hdr[:0], uint32(body))
	b = append(b, opByte(fr.op))
	b = binary.LittleEndian.AppendUint64(b, fr.keyHash)
	b = binary.LittleEndian.AppendUint64(b, fr.content)
	b = append(b, fr.id[:]...)
	b = binary.AppendUvarint(b, uint64(len(fr.key)))
	_, _ = sf.w.Write(b)
	_, _ = sf.w.WriteString(fr.key)
	_, _ = sf.w.Write(fr.object)
	_, err := sf.w.Write(binary.LittleEndian.AppendUint32(hdr[:0], uint32(body)))
	if err != nil {
		return 0, fmt.Errorf("spool %s: %w", sf.name, err)
	}
	off := sf.off
	sf.off += int64(4 + body + 4)
	sf.n++
	return off, nil
}

func varintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(b[:0], uint64(n)))
}

func (sf *spoolFile) flush() error {
	if err := sf.w.Flush(); err != nil {
		return fmt.Errorf("spool %s: %w", sf.name, err)
	}
	return nil
}

// parseFrame decodes the body of one frame (between the two lengths). The
// frame's object aliases body.
func parseFrame(body []byte) (frame, error) {
	if len(body) < frameFixed+1 {
		return frame{}, errors.New("short frame")
	}
	op, ok := byteOp(body[0])
	if !ok {
		return frame{}, fmt.Errorf("bad op byte %q", body[0])
	}
	fr := frame{
		op:      op,
		keyHash: binary.LittleEndian.Uint64(body[1:9]),
		content: binary.LittleEndian.Uint64(body[9:17]),
	}
	copy(fr.id[:], body[17:33])
	kl, n := binary.Uvarint(body[frameFixed:])
	if n <= 0 || uint64(len(body)-frameFixed-n) < kl {
		return frame{}, errors.New("bad key length")
	}
	rest := body[frameFixed+n:]
	fr.key = string(rest[:kl])
	fr.object = rest[kl:]
	return fr, nil
}

// readAt reads the frame at off into a fresh buffer.
func (sf *spoolFile) readAt(off int64) (frame, error) {
	var l [4]byte
	if _, err := sf.f.ReadAt(l[:], off); err != nil {
		return frame{}, fmt.Errorf("spool %s at %d: %w", sf.name, off, err)
	}
	body := make([]byte, binary.LittleEndian.Uint32(l[:]))
	if _, err := sf.f.ReadAt(body, off+4); err != nil {
		return frame{}, fmt.Errorf("spool %s at %d: %w", sf.name, off, err)
	}
	fr, err := parseFrame(body)
	if err != nil {
		return frame{}, fmt.Errorf("spool %s at %d: %w", sf.name, off, err)
	}
	return fr, nil
}

// forward calls fn for every frame in the order written. Each frame's
// object is freshly allocated, unless reuse is set: then it is valid only
// until fn returns.
func (sf *spoolFile) forward(reuse bool, fn func(frame) error) error {
	if _, err := sf.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool %s: %w", sf.name, err)
	}
	r := bufio.NewReaderSize(sf.f, 256<<10)
	var l [4]byte
	var buf []byte
	for i := range sf.n {
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return fmt.Errorf("spool %s frame %d: %w", sf.name, i, err)
		}
		n := int(binary.LittleEndian.Uint32(l[:])) + 4
		if !reuse || cap(buf) < n {
			buf = make([]byte, n)
		}
		body := buf[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("spool %s frame %d: %w", sf.name, i, err)
		}
		fr, err := parseFrame(body[:len(body)-4])
		if err != nil {
			return fmt.Errorf("spool %s frame %d: %w", sf.name, i, err)
		}
		if err := fn(fr); err != nil {
			return err
		}
	}
	return nil
}

// backward calls fn for every frame, the last written first.
func (sf *spoolFile) backward(fn func(frame) error) error {
	end := sf.off
	var l [4]byte
	for i := sf.n - 1; i >= 0; i-- {
		if _, err := sf.f.ReadAt(l[:], end-4); err != nil {
			return fmt.Errorf("spool %s frame %d: %w", sf.name, i, err)
		}
		start := end - 4 - int64(binary.LittleEndian.Uint32(l[:])) - 4
		fr, err := sf.readAt(start)
		if err != nil {
			return err
		}
		if err := fn(fr); err != nil {
			return err
		}
		end = start
	}
	return nil
}

// spoolPrefix names the directory of one Run's spool files.
const spoolPrefix = "skolebuss-diff-"

// SweepSpool removes from parent the spool directories of Runs that ended
// without removing them (a publisher killed midway): every one in which
// nothing has been written for minAge. A Run writes its spool files only
// while it scans, and reads them through files it holds open, which outlive
// their removal, so an old directory is never one a Run still needs to
// write. It returns how many it removed.
func SweepSpool(parent string, minAge time.Duration) (int, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, fmt.Errorf("sweep spool %s: %w", parent, err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), spoolPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		last, err := lastWrite(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if time.Since(last) < minAge {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// lastWrite is the latest modification time of dir and the files in it.
func lastWrite(dir string) (time.Time, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return time.Time{}, err
	}
	last := fi.ModTime()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().After(last) {
			last = info.ModTime()
		}
	}
	return last, nil
}
