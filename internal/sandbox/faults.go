package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Faults are injected misbehaviours. A zero field injects nothing.
type Faults struct {
	// ErrorRate is the share (0..1) of export requests answered with one of
	// ErrorStatuses (default 500, 502, 503) instead of the export.
	ErrorRate     float64 `yaml:"error_rate" json:"error_rate,omitempty"`
	ErrorStatuses []int   `yaml:"error_statuses" json:"error_statuses,omitempty"`
	// RetryAfter is sent with 503 answers (default 1s).
	RetryAfter Duration `yaml:"retry_after" json:"retry_after,omitempty"`
	// RetryAfterDate sends Retry-After of fault answers as an HTTP date
	// (RFC 9110 allows both forms) instead of seconds.
	RetryAfterDate bool `yaml:"retry_after_date" json:"retry_after_date,omitempty"`
	// Latency is added before the export answer starts.
	Latency Duration `yaml:"latency" json:"latency,omitempty"`
	// SlowBody limits the export body to this many bytes per second.
	SlowBody int `yaml:"slow_body" json:"slow_body,omitempty"`
	// CutOffAfter closes the connection after this many body bytes, without
	// the terminating chunk.
	CutOffAfter int64 `yaml:"cut_off_after" json:"cut_off_after,omitempty"`
	// MalformedAfter corrupts the XML after this many body bytes.
	MalformedAfter int64 `yaml:"malformed_after" json:"malformed_after,omitempty"`
	// ContentType replaces the export's Content-Type.
	ContentType string `yaml:"content_type" json:"content_type,omitempty"`
	// TokenEndpointDown answers token requests with 503.
	TokenEndpointDown bool `yaml:"token_endpoint_down" json:"token_endpoint_down,omitempty"`
	// TokenLifetime, when set, makes tokens expire after this long while
	// expires_in still announces the normal lifetime.
	TokenLifetime Duration `yaml:"token_lifetime" json:"token_lifetime,omitempty"`
	// TokenTenant, when set, issues tokens for this tenant (its tenant_id
	// claim) instead of the one asked for: a token endpoint answering for
	// another municipality. It must be one of the sandbox's tenants; the
	// export endpoint then serves that tenant's export to the token.
	TokenTenant string `yaml:"token_tenant" json:"token_tenant,omitempty"`
	// TokenError, when set, refuses token requests with 400 and this OAuth
	// error code: an upstream making up codes (each one a new value for
	// whatever counts refusals by code).
	TokenError string `yaml:"token_error" json:"token_error,omitempty"`
}

// IsZero reports whether f injects nothing.
func (f Faults) IsZero() bool {
	return f.ErrorRate == 0 && len(f.ErrorStatuses) == 0 && f.RetryAfter == 0 && !f.RetryAfterDate && f.Latency == 0 &&
		f.SlowBody == 0 && f.CutOffAfter == 0 && f.MalformedAfter == 0 && f.ContentType == "" &&
		!f.TokenEndpointDown && f.TokenLifetime == 0 && f.TokenTenant == "" && f.TokenError == ""
}

// over returns f with every zero field taken from base.
func (f Faults) over(base Faults) Faults {
	if f.ErrorRate == 0 {
		f.ErrorRate = base.ErrorRate
	}
	if len(f.ErrorStatuses) == 0 {
		f.ErrorStatuses = base.ErrorStatuses
	}
	if f.RetryAfter == 0 {
		f.RetryAfter = base.RetryAfter
	}
	f.RetryAfterDate = f.RetryAfterDate || base.RetryAfterDate
	if f.Latency == 0 {
		f.Latency = base.Latency
	}
	if f.SlowBody == 0 {
		f.SlowBody = base.SlowBody
	}
	if f.CutOffAfter == 0 {
		f.CutOffAfter = base.CutOffAfter
	}
	if f.MalformedAfter == 0 {
		f.MalformedAfter = base.MalformedAfter
	}
	if f.ContentType == "" {
		f.ContentType = base.ContentType
	}
	f.TokenEndpointDown = f.TokenEndpointDown || base.TokenEndpointDown
	if f.TokenLifetime == 0 {
		f.TokenLifetime = base.TokenLifetime
	}
	if f.TokenTenant == "" {
		f.TokenTenant = base.TokenTenant
	}
	if f.TokenError == "" {
		f.TokenError = base.TokenError
	}
	return f
}

// validate checks f; path names it in errors ("faults", "tenants[2].faults").
func (f Faults) validate(path string) error {
	var errs []error
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		errs = append(errs, fieldErr(path+".error_rate", "must be between 0 and 1, not %v", f.ErrorRate))
	}
	for i, st := range f.ErrorStatuses {
		if st < 500 || st > 599 {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.error_statuses[%d]", path, i), "must be a 5xx status, not %d", st))
		}
	}
	if f.RetryAfter < 0 {
		errs = append(errs, fieldErr(path+".retry_after", "must not be negative"))
	}
	if f.Latency < 0 {
		errs = append(errs, fieldErr(path+".latency", "must not be negative"))
	}
	if f.SlowBody < 0 {
		errs = append(errs, fieldErr(path+".slow_body", "must not be negative (bytes per second)"))
	}
	if f.CutOffAfter < 0 {
		errs = append(errs, fieldErr(path+".cut_off_after", "must not be negative (bytes)"))
	}
	if f.MalformedAfter < 0 {
		errs = append(errs, fieldErr(path+".malformed_after", "must not be negative (bytes)"))
	}
	if f.TokenLifetime < 0 {
		errs = append(errs, fieldErr(path+".token_lifetime", "must not be negative"))
	}
	if len(f.TokenError) > 100 {
		errs = append(errs, fieldErr(path+".token_error", "must be at most 100 bytes, not %d", len(f.TokenError)))
	}
	if f.TokenTenant != "" && !guidRE.MatchString(f.TokenTenant) {
		errs = append(errs, fieldErr(path+".token_tenant", "must be a tenant's GUID, not %q", f.TokenTenant))
	}
	return errors.Join(errs...)
}

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

// setRetryAfter sets the Retry-After of a fault answer: d in whole seconds,
// or, with RetryAfterDate, the moment now+d as an HTTP date.
func (f Faults) setRetryAfter(w http.ResponseWriter, now time.Time, d time.Duration) {
	secs := retryAfterSeconds(d)
	if f.RetryAfterDate {
		// An HTTP date has whole seconds: a second more, so the wait it
		// announces is never shorter than d.
		w.Header().Set("Retry-After", now.Add(time.Duration(secs+1)*time.Second).UTC().Format(http.TimeFormat))
		return
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}
