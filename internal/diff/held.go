package diff

import (
	"fmt"

	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// HeldError is why an export was held instead of applied: it would delete
// more than Config.DeleteThreshold of the tenant's records, either overall
// (Entity is empty) or of one entity that had at least
// Config.MinEntityRecords records, or it is empty while the tenant had
// records or had no applied state yet (a first export). Run returns it wrapped in a permanent *failure.Error with reason
// "deletion_held" (find it with errors.As): retrying the same export gives
// the same answer; an operator looks, and reruns with Config.Force if the
// deletions are real (a school year's rollover, a school leaving).
type HeldError struct {
	Tenant, ExportID string
	Entity           pifu.Entity // "" when the overall share tripped
	Deleted          int         // records the export would delete (of Entity, or overall)
	Previous         int         // records before (of Entity, or overall)
	Threshold        float64
	Empty            bool // the export has no records at all
	First            bool // an empty export that would be the tenant's first
}

// Share is Deleted / Previous.
func (e *HeldError) Share() float64 {
	if e.Previous == 0 {
		return 0
	}
	return float64(e.Deleted) / float64(e.Previous)
}

func (e *HeldError) Error() string {
	what := "records"
	if e.Entity != "" {
		what = string(e.Entity) + " records"
	}
	if e.Empty && e.First {
		return fmt.Sprintf("export %s of tenant %s held: it is empty and would be the tenant's first export; rerun with force to apply it",
			e.ExportID, e.Tenant)
	}
	if e.Empty {
		return fmt.Sprintf("export %s of tenant %s held: it is empty and would delete all %d %s; rerun with force to apply it",
			e.ExportID, e.Tenant, e.Previous, what)
	}
	return fmt.Sprintf("export %s of tenant %s held: it would delete %d of %d %s (%.1f%%), more than the threshold of %.1f%%; rerun with force to apply it",
		e.ExportID, e.Tenant, e.Deleted, e.Previous, what, 100*e.Share(), 100*e.Threshold)
}

// checkHeld applies the threshold to the counts of a pass.
func checkHeld(cfg Config, in Input, counts [4]Counts, prevCounts [4]int, seenAny bool) error {
	if cfg.Force {
		return nil
	}
	held := func(h HeldError) error {
		h.Tenant, h.ExportID, h.Threshold = in.Tenant, in.ExportID, cfg.DeleteThreshold
		return failure.New(failure.Permanent, failure.ReasonDeletionHeld, &h)
	}
	prevTotal, delTotal := 0, 0
	for i := range counts {
		prevTotal += prevCounts[i]
		delTotal += counts[i].Deleted
	}
	if !seenAny && (in.Prev == nil || prevTotal > 0) {
		// Empty: held when it would delete records, and as a tenant's first
		// export (an upstream serving nothing for a new tenant is likelier
		// broken than the municipality empty). Once an empty state is
		// applied (forced), an empty export has nothing to delete.
		return held(HeldError{Deleted: delTotal, Previous: prevTotal, Empty: true, First: in.Prev == nil})
	}
	if prevTotal == 0 {
		return nil
	}
	if float64(delTotal) > cfg.DeleteThreshold*float64(prevTotal) {
		return held(HeldError{Deleted: delTotal, Previous: prevTotal})
	}
	for i, c := range counts {
		if prevCounts[i] >= cfg.MinEntityRecords && float64(c.Deleted) > cfg.DeleteThreshold*float64(prevCounts[i]) {
			return held(HeldError{Entity: pifu.Entities[i], Deleted: c.Deleted, Previous: prevCounts[i]})
		}
	}
	return nil
}
