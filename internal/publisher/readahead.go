package publisher

import (
	"io"
	"sync"
)

// readAhead reads its source in a goroutine of its own, up to readAheadBufs
// buffers of readAheadSize ahead of its reader. An export object comes from
// the object store through a synchronous pipe, chunk by chunk, each chunk
// hashed (SHA-256) before it is handed over: read directly, the parser
// waits for every chunk's hashing and delivery, and the hashing waits for
// the parser. Read ahead, the two overlap.
//
// Read is for one goroutine. To end the goroutine, close quit, make a Read
// of the source in progress return (closing the source), and wait for wg;
// see export.Close.
type readAhead struct {
	full chan chunk
	free chan []byte
	quit chan struct{}
	wg   sync.WaitGroup
	buf  []byte // the chunk being read, whole
	cur  []byte // its unread rest
	err  error
}

type chunk struct {
	b   []byte
	err error // set on the last chunk: io.EOF or the source's error
}

const (
	readAheadSize = 256 << 10
	readAheadBufs = 8
)

func newReadAhead(src io.Reader) *readAhead {
	r := &readAhead{full: make(chan chunk, readAheadBufs), free: make(chan []byte, readAheadBufs),
		quit: make(chan struct{})}
	r.wg.Go(func() {
		for {
			var buf []byte
			select {
			case buf = <-r.free:
			default:
				buf = make([]byte, readAheadSize)
			}
			n, err := io.ReadFull(src, buf[:cap(buf)])
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case r.full <- chunk{buf[:n], err}:
			case <-r.quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return r
}

// Read reads what the goroutine has read, then its final error.
func (r *readAhead) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		c, ok := <-r.full
		if !ok {
			return 0, io.ErrClosedPipe // unreachable: the last chunk carries an error
		}
		if r.buf != nil {
			select {
			case r.free <- r.buf[:0]:
			default:
			}
		}
		r.buf, r.cur, r.err = c.b, c.b, c.err
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
