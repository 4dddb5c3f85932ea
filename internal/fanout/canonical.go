package fanout

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/projection"
	"github.com/skolebuss/skolebuss/internal/snapshot"
)

// canonicalDelta is what the canonical change ev (decoded as c) moves the
// canonical state's checksum by, as the publisher's snapshot moves: the mix
// of the key hash and XXH64 of the object's bytes (a membership's marks
// included) added unless the change is a deletion; the mix with the
// record's content before the change taken away unless it is a creation
// (of a deletion, the object itself; of an update, the object with the
// previous values laid over it, in canonical form).
func canonicalDelta(h *snapshot.Hasher, ev messages.Event, c projection.Canonical) snapshot.Checksum {
	k := h.Key(ev.Entity, ev.Key)
	obj := snapshot.Checksum(snapshot.Mix(k, xxhash.Sum64(ev.Object)))
	switch ev.Op {
	case messages.OpCreated:
		return obj
	case messages.OpDeleted:
		return -obj
	}
	old, _, _ := h.Content(c.Old)
	return obj - snapshot.Checksum(snapshot.Mix(k, old))
}

// parseChecksum reads the checksum an export.completed carries
// (messages.FormatChecksum); ok is false when it carries none or another
// form.
func parseChecksum(s string) (snapshot.Checksum, bool) {
	hex, ok := strings.CutPrefix(s, messages.ChecksumPrefix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	return snapshot.Checksum(v), err == nil
}

// healID is the id of the resync that replaces the delivery of the export
// exportID whose change events do not add up to its checksum: the same on
// a redo, so a redo stores nothing twice.
func healID(exportID string) string { return "checksum-" + exportID }

// heal replaces the delivery of the export b (export.completed at the
// stream sequence end) to v, whose canonical change events in the LMS
// stream do not add up to the checksum the export.completed carries (got,
// want): some were lost. It is logged (without personal data) and counted,
// and v gets a resync of the tenant's current state instead, so its copy
// is the truth again.
func (f *Fanout) heal(ctx context.Context, v Vendor, b messages.Boundary, got, want snapshot.Checksum) error {
	f.mismatches.Add(1)
	f.mismatched.Add(ctx, 1, metric.WithAttributes(attribute.String("vendor", v.Name), attribute.String("skolebuss.tenant", b.Tenant)))
	f.deps.Logger.Warn("fan-out: the canonical change events of an export do not add up to its checksum (events lost from the LMS stream); the vendor gets a resync of the tenant instead",
		"vendor", v.Name, "tenant", b.Tenant, "export_id", b.ExportID,
		"checksum", messages.FormatChecksum(want), "events_sum", messages.FormatChecksum(got),
		"mismatches", f.mismatches.Load())
	if err := f.resync(ctx, v, b.Tenant, healID(b.ExportID)); err != nil {
		return fmt.Errorf("resync after the checksum mismatch: %w", err)
	}
	return nil
}

// Mismatches is the number of exports whose canonical change events, as
// read from the LMS stream, did not add up to the checksum their
// export.completed carries, per vendor delivery, since the stage started
// (each healed by a resync).
func (f *Fanout) Mismatches() int64 { return f.mismatches.Load() }
