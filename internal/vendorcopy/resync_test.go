package vendorcopy

import (
	"testing"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/pifu"
)

// A resync's export.started drops the copy: a record the state no longer
// has does not survive it, and the copy matches the resync's checksum.
func TestResyncDropsTheCopy(t *testing.T) {
	tc := newTenantCopy(tenant, 100)
	tc.boundary(boundary("x1", messages.PhaseStarted, 2, ""))
	tc.change(event("e1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":1}`, ""))
	tc.change(event("e2", pifu.EntityPerson, messages.OpCreated, "p2", `{"a":2}`, ""))
	tc.boundary(boundary("x1", messages.PhaseCompleted, 2, stateChecksum(map[string]string{"p1": `{"a":1}`, "p2": `{"a":2}`})))
	if !tc.status.Matched {
		t.Fatalf("before the resync: %s", tc.status.Mismatch)
	}
	started := boundary("x2", messages.PhaseStarted, 1, "")
	started.ID, started.Resync = "r-started", true
	tc.boundary(started)
	tc.change(event("r1", pifu.EntityPerson, messages.OpCreated, "p1", `{"a":3}`, ""))
	done := boundary("x2", messages.PhaseCompleted, 1, stateChecksum(map[string]string{"p1": `{"a":3}`}))
	done.ID, done.Resync = "r-completed", true
	tc.boundary(done)
	if !tc.status.Matched || len(tc.recs[2]) != 1 {
		t.Fatalf("after the resync: %d persons, %s", len(tc.recs[2]), tc.status.Mismatch)
	}
}
