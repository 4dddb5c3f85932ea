package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// The default bounds of one export (see Bounds). The largest municipality
// the sandbox generates exports 272.5 MB; Oslo, the largest real one, is
// two to three times that. A gibibyte holds it with room to grow; half an
// hour is that gibibyte at about 0.6 MB/s, far slower than any export has
// arrived, and short enough that an upstream trickling its body gives up
// its fetch slot.
const (
	DefaultMaxExportSize  int64 = 1 << 30
	DefaultExportDeadline       = 30 * time.Minute
)

// Bounds limit one export of a tenant.
type Bounds struct {
	// Deadline bounds the whole export: the token, the answer and the body
	// into the object store. A body still arriving then is cut however
	// steadily it trickles (the idle timeout cuts only one that stops), and
	// the job fails Permanent with failure.ReasonExportDeadline: the next
	// scheduled job tries again. Default DefaultExportDeadline.
	Deadline time.Duration
	// MaxSize is the largest export stored, in bytes: an answer announcing
	// more is refused before its body is read, and a body is read to at
	// most MaxSize+1 bytes; either fails Permanent with
	// failure.ReasonExportTooLarge and stores nothing. Default
	// DefaultMaxExportSize.
	MaxSize int64
}

// over returns b with every zero field taken from base.
func (b Bounds) over(base Bounds) Bounds {
	if b.Deadline == 0 {
		b.Deadline = base.Deadline
	}
	if b.MaxSize == 0 {
		b.MaxSize = base.MaxSize
	}
	return b
}

func (b Bounds) validate(what string) error {
	if b.Deadline < 0 || b.MaxSize < 0 {
		return fmt.Errorf("fetcher: %s: deadline %s and max size %d must not be negative", what, b.Deadline, b.MaxSize)
	}
	return nil
}

// boundsOf are the bounds of tenant's exports.
func (f *Fetcher) boundsOf(tenant string) Bounds {
	return f.cfg.TenantBounds[tenant].over(f.cfg.Bounds)
}

// errDeadline is the cause of a download's context when its export
// deadline passes.
var errDeadline = errors.New("export deadline passed")

// withDeadline runs download under b's deadline: when the deadline (and not
// ctx) ends it, the error is the Permanent ReasonExportDeadline, whatever
// the step it cut (the token, the answer's headers, a body read).
func withDeadline[T any](ctx context.Context, b Bounds, tenant string, download func(context.Context) (T, error)) (T, error) {
	dctx, cancel := context.WithTimeoutCause(ctx, b.Deadline, errDeadline)
	defer cancel()
	got, err := download(dctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(dctx), errDeadline) {
		// The step's own classification (a timeout, a transient one) is
		// not what happened: only what it was doing when cut is kept.
		cause := err
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Err != nil {
			cause = fe.Err
		}
		var zero T
		return zero, failure.New(failure.Permanent, failure.ReasonExportDeadline,
			fmt.Errorf("export of tenant %s: not whole within the export deadline of %s: %w", tenant, b.Deadline, cause))
	}
	return got, err
}

// capped reads at most max+1 bytes of r: the byte past max fails the read
// with the Permanent ReasonExportTooLarge (the bytes of that read are not
// passed on), so a body never grows the store past its bound.
type capped struct {
	r      io.Reader
	n, max int64
	tenant string
}

func (c *capped) Read(p []byte) (int, error) {
	if left := c.max + 1 - c.n; int64(len(p)) > left {
		p = p[:left]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return 0, tooLarge(c.tenant, fmt.Sprintf("the body passed %d bytes", c.max), c.max)
	}
	return n, err
}

func tooLarge(tenant, what string, limit int64) error {
	return failure.New(failure.Permanent, failure.ReasonExportTooLarge,
		fmt.Errorf("export of tenant %s: %s, more than the maximum export size of %d bytes", tenant, what, limit))
}
