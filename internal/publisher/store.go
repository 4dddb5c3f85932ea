package publisher

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/diff"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// Metadata keys of a snapshot object in the "snapshots" store.
const (
	// MetaExportID is the id of the export the snapshot came from.
	MetaExportID = "skolebuss-export-id"
	// MetaExportObject is the name of that export's object in the "exports"
	// store: the export the next diff reads again for previous values.
	MetaExportObject = "skolebuss-export-object"
)

// Objects is the part of a jetstream.ObjectStore the publisher uses.
type Objects interface {
	Get(ctx context.Context, name string, opts ...jetstream.GetObjectOpt) (jetstream.ObjectResult, error)
	GetInfo(ctx context.Context, name string, opts ...jetstream.GetObjectInfoOpt) (*jetstream.ObjectInfo, error)
	Put(ctx context.Context, meta jetstream.ObjectMeta, reader io.Reader) (*jetstream.ObjectInfo, error)
	Delete(ctx context.Context, name string) error
}

var _ Objects = (jetstream.ObjectStore)(nil)

// State is a tenant's applied state: its snapshot and the export object it
// came from.
type State struct {
	Snapshot     *snapshot.Snapshot
	ExportObject string
}

// SnapshotName is the object name of a tenant's snapshot in the "snapshots"
// store.
func SnapshotName(tenant string) string { return tenant }

// LoadState reads tenant's snapshot from the snapshots store. A tenant
// without one (never exported) has a zero State and no error. A snapshot that
// does not decode is a permanent error: an operator must look.
func LoadState(ctx context.Context, snaps Objects, tenant string) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, ObjectReadTimeout)
	defer cancel()
	obj, err := snaps.Get(ctx, SnapshotName(tenant))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("load snapshot of tenant %s: %w", tenant, err)
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil {
		return State{}, fmt.Errorf("load snapshot of tenant %s: %w", tenant, err)
	}
	s, err := snapshot.Decode(obj)
	if err == nil {
		// Read to the end so the object store checks the digest.
		_, err = io.Copy(io.Discard, obj)
	}
	if errors.Is(err, snapshot.ErrCorrupt) || errors.Is(err, snapshot.ErrVersion) {
		return State{}, failure.New(failure.Permanent, failure.ReasonSnapshotCorrupt, fmt.Errorf("load snapshot of tenant %s: %w", tenant, err))
	}
	if err != nil {
		return State{}, fmt.Errorf("load snapshot of tenant %s: %w", tenant, err)
	}
	if s.Tenant() != tenant {
		return State{}, failure.Permanentf(failure.ReasonSnapshotCorrupt, "snapshot %q holds tenant %q", SnapshotName(tenant), s.Tenant())
	}
	return State{Snapshot: s, ExportObject: info.Metadata[MetaExportObject]}, nil
}

// storeState makes s the tenant's state, replacing the one before in one
// Put. Only then is it the tenant's.
func storeState(ctx context.Context, snaps Objects, s *snapshot.Snapshot, exportObject string) error {
	var buf bytes.Buffer
	buf.Grow(64 + 16*s.Len())
	if err := s.Encode(&buf); err != nil {
		return fmt.Errorf("encode snapshot of tenant %s: %w", s.Tenant(), err)
	}
	meta := jetstream.ObjectMeta{
		Name:        SnapshotName(s.Tenant()),
		Description: "state of tenant " + s.Tenant() + " after export " + s.ExportID(),
		Metadata:    map[string]string{MetaExportID: s.ExportID(), MetaExportObject: exportObject},
	}
	if _, err := snaps.Put(ctx, meta, &buf); err != nil {
		return fmt.Errorf("store snapshot of tenant %s: %w", s.Tenant(), err)
	}
	return nil
}

// export is an export object opened for parsing, read ahead of the parser
// (see readAhead).
type export struct {
	obj    jetstream.ObjectResult
	cancel context.CancelFunc // of the read's deadline
	ra     *readAhead
	dec    *pifu.Decoder
}

func newExport(obj jetstream.ObjectResult, cancel context.CancelFunc) *export {
	ra := newReadAhead(obj)
	return &export{obj: obj, cancel: cancel, ra: ra, dec: pifu.NewDecoder(ra)}
}

// ObjectReadTimeout bounds the whole read of one object (an export or a
// snapshot). The jetstream package's ObjectStore.Get ends the read at the
// context's deadline and gives a context without one the JetStream
// context's default timeout, 5 s: too short for a large municipality's
// export, which is read as fast as the publisher parses it, and a read
// that runs out fails the export, again at every redelivery. A stalled
// read is not what this catches (the ordered consumer behind the read
// recovers by itself); it only keeps a read from going on forever.
const ObjectReadTimeout = time.Hour

func (e *export) Next() (pifu.Record, error) { return e.dec.Next() }

// Close stops the reading ahead and closes the object. The object's Close
// waits for a Read in progress, which returns with the next chunk (or at
// the object's read deadline); the read-ahead goroutine then sees the quit.
func (e *export) Close() error {
	close(e.ra.quit)
	err := e.obj.Close()
	e.ra.wg.Wait()
	e.cancel()
	return err
}

// openExport opens the export object name as a stream of records. A missing
// object is permanent (reason missingReason): it will not come back. When
// sha256Hex is set, the object's digest must match it.
func openExport(ctx context.Context, exports Objects, name, sha256Hex string, missingReason failure.Reason) (_ *export, err error) {
	ctx, cancel := context.WithTimeout(ctx, ObjectReadTimeout)
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	obj, err := exports.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, failure.Permanentf(missingReason, "export object %q is not in the exports store (deleted or expired)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("open export object %q: %w", name, err)
	}
	if sha256Hex != "" {
		info, err := obj.Info()
		if err != nil {
			obj.Close()
			return nil, fmt.Errorf("open export object %q: %w", name, err)
		}
		if got, ok := digestHex(info.Digest); ok && !strings.EqualFold(got, sha256Hex) {
			obj.Close()
			return nil, failure.Permanentf(failure.ReasonExportMismatch,
				"export object %q has SHA-256 %s, the fetched-export message says %s", name, got, sha256Hex)
		}
	}
	return newExport(obj, cancel), nil
}

// digestHex turns the object store's "SHA-256=<base64url>" into hex.
func digestHex(d string) (string, bool) {
	b64, ok := strings.CutPrefix(d, "SHA-256=")
	if !ok {
		return "", false
	}
	raw, err := base64.URLEncoding.DecodeString(b64)
	if err != nil {
		return "", false
	}
	return hex.EncodeToString(raw), true
}

// opener reopens the export a state came from, for diff.Input.OpenPrev.
func opener(exports Objects, st State) func(ctx context.Context) (diff.RecordReader, io.Closer, error) {
	return func(ctx context.Context) (diff.RecordReader, io.Closer, error) {
		if st.ExportObject == "" {
			return nil, nil, failure.Permanentf(failure.ReasonPreviousExportMissing,
				"the snapshot of tenant %s names no export object for export %s",
				st.Snapshot.Tenant(), st.Snapshot.ExportID())
		}
		e, err := openExport(ctx, exports, st.ExportObject, "", failure.ReasonPreviousExportMissing)
		if err != nil {
			return nil, nil, err
		}
		return e, e, nil
	}
}
