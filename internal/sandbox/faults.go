package sandbox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// errCutOff ends an export whose body a fault cuts off.
var errCutOff = errors.New("body cut off by a sandbox fault")

// corruption is what a malformed_after fault inserts into the XML: a stray
// "<" followed by "&" is not well-formed anywhere in a document.
const corruption = "<&<!-- sandbox: malformed -->"

// faultyBody wraps the response writer in the body faults of f, in the
// order bytes flow: corrupt, cut off, slow down.
func faultyBody(w http.ResponseWriter, ctx context.Context, f Faults) io.Writer {
	var out io.Writer = w
	if f.SlowBody > 0 {
		out = &slowWriter{ctx: ctx, w: w, rc: http.NewResponseController(w), bps: f.SlowBody}
	}
	if f.CutOffAfter > 0 {
		out = &cutOffWriter{w: out, rc: http.NewResponseController(w), left: f.CutOffAfter}
	}
	if f.MalformedAfter > 0 {
		out = &malformWriter{w: out, left: f.MalformedAfter}
	}
	return out
}

// cutOffWriter passes left bytes, flushes them to the client, then fails
// with errCutOff.
type cutOffWriter struct {
	w    io.Writer
	rc   *http.ResponseController
	left int64
}

func (c *cutOffWriter) Write(p []byte) (int, error) {
	if int64(len(p)) < c.left {
		n, err := c.w.Write(p)
		c.left -= int64(n)
		return n, err
	}
	n, err := c.w.Write(p[:c.left])
	c.left -= int64(n)
	if err != nil {
		return n, err
	}
	c.rc.Flush()
	return n, errCutOff
}

// malformWriter inserts corruption once, after left bytes.
type malformWriter struct {
	w    io.Writer
	left int64
	done bool
}

func (m *malformWriter) Write(p []byte) (int, error) {
	if m.done || int64(len(p)) < m.left {
		n, err := m.w.Write(p)
		m.left -= int64(n)
		return n, err
	}
	head := p[:m.left]
	n, err := m.w.Write(head)
	if err != nil {
		return n, err
	}
	m.done = true
	if _, err := io.WriteString(m.w, corruption); err != nil {
		return n, err
	}
	k, err := m.w.Write(p[len(head):])
	return n + k, err
}

// slowWriter sends at most bps bytes per second, in pieces of a tenth of a
// second, flushing each. It stops when ctx ends.
type slowWriter struct {
	ctx   context.Context
	w     io.Writer
	rc    *http.ResponseController
	bps   int
	start time.Time
	sent  int64
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.start.IsZero() {
		s.start = time.Now()
	}
	piece := max(s.bps/10, 1)
	written := 0
	for len(p) > 0 {
		n := min(piece, len(p))
		k, err := s.w.Write(p[:n])
		written += k
		s.sent += int64(k)
		if err != nil {
			return written, err
		}
		s.rc.Flush()
		p = p[n:]
		due := s.start.Add(time.Duration(float64(s.sent) / float64(s.bps) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return written, s.ctx.Err()
			}
		}
	}
	return written, nil
}
