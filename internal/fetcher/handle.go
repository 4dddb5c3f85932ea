package fetcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/quota"
	"github.com/skolebuss/skolebuss/internal/telemetry"
)

// Object metadata keys: what the FetchedExport needs besides size and digest,
// so a redo announces exactly what the first attempt would have.
const (
	metaJob         = "job_id"
	metaTenant      = "tenant"
	metaApplication = "application"
	metaFetchedAt   = "fetched_at"
	metaAPIVersion  = "api_version"
	metaDeprecation = "deprecation"
	metaSunset      = "sunset"
)

// ObjectName is the name of a job's export in the object store "exports":
// <tenant>/<job id>.xml.
func ObjectName(job messages.ExportJob) string { return job.Tenant + "/" + job.JobID + ".xml" }

// fetched is a stored export, and whether it was stored by this attempt.
type fetched struct {
	fe    messages.FetchedExport
	fresh bool
}

// Handle is the worker.Handler of the stage: see the package documentation
// for what each outcome does. Cancelling ctx cuts a download (the job is
// handed back, class Canceled). The span, the job's metrics and the check
// that the job's tenant is its subject's are the worker's middleware
// (WorkerConfig); Handle adds the job's ids to the span in ctx.
func (f *Fetcher) Handle(ctx context.Context, m *message.Message) error {
	job, err := messages.DecodeWatermill[messages.ExportJob](m)
	if err != nil {
		return err
	}
	span := trace.SpanFromContext(ctx)
	telemetry.Set(span, telemetry.Application(job.Application), telemetry.Job(job.JobID))
	note := noteOf(ctx)
	note.application = job.Application
	lim, ok := f.cfg.Applications[job.Application]
	if !ok {
		return failure.Permanentf("unknown_application", "job %s names application %s, which the configuration does not list", job.JobID, job.Application)
	}
	name := ObjectName(job)

	got, err := f.stored(ctx, job, name)
	if err != nil {
		return err
	}
	if got == nil {
		br := f.breakers.get(job.Tenant)
		if err := br.allow(); err != nil { // before spending a request of the quota
			return err
		}
		usage, err := f.limiter.Wait(ctx, job.Application, lim, f.cfg.MaxQuotaWait)
		if err != nil {
			return err
		}
		telemetry.Set(span, quotaAttrs(usage)...)
		got, err = br.execute(func() (*fetched, error) {
			return withDeadline(ctx, f.boundsOf(job.Tenant), job.Tenant, func(dctx context.Context) (*fetched, error) {
				return f.download(ctx, dctx, job, name)
			})
		})
		if err != nil {
			f.blockOnThrottle(ctx, job, err)
			return err
		}
	}
	note.reused = !got.fresh
	telemetry.Set(span, telemetry.Export(got.fe.ExportID), telemetry.Count("bytes", got.fe.Size))
	// A forced replay of a job forces its export past the publisher's
	// deletion threshold.
	got.fe.Force = m.Metadata.Get(messages.HeaderForce) == messages.ForceValue
	return f.announce(ctx, got)
}

// blockOnThrottle makes every replica honour the upstream's Retry-After.
func (f *Fetcher) blockOnThrottle(ctx context.Context, job messages.ExportJob, err error) {
	if failure.ClassOf(err) != failure.Throttled {
		return
	}
	if r := failure.ReasonOf(err); r != "http_429" && r != "http_503" {
		return
	}
	wait, _ := failure.RetryAfter(err)
	if err := f.limiter.Block(ctx, job.Application, f.now().Add(wait)); err != nil {
		f.logger.Warn("could not share the upstream's Retry-After with the other fetchers", "application", job.Application, "error", err)
	}
	f.metrics.throttledUpstream(ctx, job.Application)
}

// stored returns the export an earlier attempt of job stored, or nil.
func (f *Fetcher) stored(ctx context.Context, job messages.ExportJob, name string) (*fetched, error) {
	info, err := f.exports.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(ctx, "look up", name, err)
	}
	fe, err := fetchedFrom(job, info)
	if err != nil {
		// Not ours or damaged: fetch again over it.
		f.logger.Warn("stored export unusable; fetching again", "tenant", job.Tenant, "job_id", job.JobID, "error", err)
		return nil, nil
	}
	f.logger.Info("export already stored by an earlier attempt; announcing it", "tenant", job.Tenant, "job_id", job.JobID)
	return &fetched{fe: fe}, nil
}

// download fetches the export and streams it into the object store. The
// request and its body run under dctx, the export's deadline; the store
// under ctx, so that a deadline cutting the body still lets the store purge
// the chunks written so far. The body is read to at most the tenant's
// maximum size and one byte.
func (f *Fetcher) download(ctx, dctx context.Context, job messages.ExportJob, name string) (*fetched, error) {
	max := f.boundsOf(job.Tenant).MaxSize
	exp, err := f.api.FetchExport(dctx, job.Application, job.Tenant)
	if err != nil {
		return nil, err
	}
	defer exp.Body.Close()
	if exp.Deprecation != "" || exp.Sunset != "" {
		f.metrics.deprecated(ctx, job.Application)
	}
	if exp.ContentLength > max {
		return nil, tooLarge(job.Tenant, fmt.Sprintf("the answer announces %d bytes", exp.ContentLength), max)
	}
	body := &hashingReader{r: &capped{r: exp.Body, max: max, tenant: job.Tenant}, h: sha256.New()}
	meta := jetstream.ObjectMeta{
		Name:        name,
		Description: "PIFU export of tenant " + job.Tenant + ", job " + job.JobID,
		Metadata: map[string]string{
			metaJob: job.JobID, metaTenant: job.Tenant, metaApplication: job.Application,
			metaFetchedAt:  f.now().UTC().Format(time.RFC3339Nano),
			metaAPIVersion: exp.APIVersion, metaDeprecation: exp.Deprecation, metaSunset: exp.Sunset,
		},
	}
	info, err := f.exports.Put(ctx, meta, body)
	if err != nil {
		if body.err != nil && !errors.Is(body.err, io.EOF) {
			err = body.err // the upstream's classified read error (cut, reset, stalled, canceled)
		} else {
			err = storeError(ctx, "store", name, err)
		}
		f.removePartial(name)
		return nil, fmt.Errorf("export of tenant %s: %w", job.Tenant, err)
	}
	sum := hex.EncodeToString(body.h.Sum(nil))
	fe, err := fetchedFrom(job, info)
	if err == nil && (fe.SHA256 != sum || fe.Size != body.n) {
		err = fmt.Errorf("stored %d bytes sha256 %s, read %d bytes sha256 %s", fe.Size, fe.SHA256, body.n, sum)
	}
	if err != nil {
		f.removePartial(name)
		return nil, failure.New(failure.Transient, "store_mismatch", fmt.Errorf("export of tenant %s: %w", job.Tenant, err))
	}
	f.metrics.bytes(ctx, job.Application, fe.Size)
	return &fetched{fe: fe, fresh: true}, nil
}

// announce publishes the FetchedExport (Nats-Msg-Id from the job id, the
// trace context of ctx).
func (f *Fetcher) announce(ctx context.Context, got *fetched) error {
	msg, err := messages.Encode(got.fe)
	if err != nil {
		return fmt.Errorf("announce export %s: %w", got.fe.ExportID, err)
	}
	telemetry.InjectNATS(ctx, msg)
	ack, err := f.js.PublishMsg(ctx, msg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("announce export %s: %w", got.fe.ExportID, ctx.Err())
		}
		return failure.New(failure.Transient, "publish", fmt.Errorf("announce export %s: %w", got.fe.ExportID, err))
	}
	f.logger.Info("export fetched", "tenant", got.fe.Tenant, "job_id", got.fe.JobID, "bytes", got.fe.Size,
		"fresh", got.fresh, "duplicate", ack.Duplicate, "seq", ack.Sequence, "trace_id", telemetry.TraceID(ctx))
	return nil
}

// removePartial deletes what a failed Put may have left (the object store
// purges the chunks itself; this also drops an object whose metadata made it).
func (f *Fetcher) removePartial(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.exports.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		f.logger.Warn("could not delete a partial export", "object", name, "error", err)
	}
}

// fetchedFrom builds the FetchedExport of a stored object.
func fetchedFrom(job messages.ExportJob, info *jetstream.ObjectInfo) (messages.FetchedExport, error) {
	md := info.Metadata
	if md[metaJob] != job.JobID || md[metaTenant] != job.Tenant {
		return messages.FetchedExport{}, fmt.Errorf("object %s belongs to job %q of tenant %q", info.Name, md[metaJob], md[metaTenant])
	}
	digest, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil || len(digest) != sha256.Size {
		return messages.FetchedExport{}, fmt.Errorf("object %s: digest %q is not SHA-256", info.Name, info.Digest)
	}
	at, err := time.Parse(time.RFC3339Nano, md[metaFetchedAt])
	if err != nil {
		return messages.FetchedExport{}, fmt.Errorf("object %s: fetched_at: %w", info.Name, err)
	}
	fe := messages.FetchedExport{
		JobID: job.JobID, ExportID: job.JobID, Tenant: job.Tenant, Application: job.Application,
		Object: info.Name, Size: int64(info.Size), SHA256: hex.EncodeToString(digest), FetchedAt: at,
		APIVersion: md[metaAPIVersion], Deprecation: md[metaDeprecation], Sunset: md[metaSunset],
	}
	return fe, fe.Validate()
}

// storeError classifies an object store failure: Canceled when ctx ended,
// else Transient (the bus may be back on the next attempt).
func storeError(ctx context.Context, what, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s export %s: %w", what, name, ctx.Err())
	}
	return failure.New(failure.Transient, "object_store", fmt.Errorf("%s export %s: %w", what, name, err))
}

// hashingReader counts and hashes what is read through it and keeps the
// first read error.
type hashingReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.h.Write(p[:n])
		h.n += int64(n)
	}
	if err != nil && h.err == nil {
		h.err = err
	}
	return n, err
}

// quotaAttrs are the application's quota use and what remains, counted with
// this job's request (telemetry.QuotaUse), for each period with a limit.
func quotaAttrs(u quota.Usage) []telemetry.Attr {
	var a []telemetry.Attr
	if u.DailyLimit > 0 {
		a = append(a, telemetry.QuotaUse("daily", u.Daily, max(u.DailyLimit-u.Daily, 0))...)
	}
	if u.MonthlyLimit > 0 {
		a = append(a, telemetry.QuotaUse("monthly", u.Monthly, max(u.MonthlyLimit-u.Monthly, 0))...)
	}
	return a
}
