package fanout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// state is what one vendor holds of one tenant after the last export the
// stage delivered, as stored in the object store "fanout" under
// <vendor>.<tenant>.
type state struct {
	// LastSeq is the LMS stream sequence of that export's export.completed.
	LastSeq  uint64 `json:"last_seq"`
	ExportID string `json:"export_id"`
	// Checksum of the vendor's state (snapshot.Checksum).
	Checksum uint64 `json:"checksum"`
	// Totals are the vendor's records per entity.
	Totals map[pifu.Entity]int `json:"totals"`
	// Canonical is the checksum of the canonical state (the publisher's
	// snapshot.Checksum) after that export, which the next export's change
	// events move to its export.completed's; nil when not known (state
	// stored before it was kept, or an export.completed without a
	// checksum): the next export's is then taken as it is.
	Canonical *uint64 `json:"canonical,omitempty"`
	// Index is the tenant's guardian index (projection.Index, encoded),
	// for a profile without guardians.
	Index []byte `json:"index,omitempty"`
}

func stateName(vendor, tenant string) string { return vendor + "." + tenant }

func loadState(ctx context.Context, store jetstream.ObjectStore, vendor, tenant string) (state, error) {
	b, err := store.GetBytes(ctx, stateName(vendor, tenant))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return state{Totals: map[pifu.Entity]int{}}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("load the fan-out state of %s: %w", stateName(vendor, tenant), err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return state{}, fmt.Errorf("decode the fan-out state of %s: %w", stateName(vendor, tenant), err)
	}
	if s.Totals == nil {
		s.Totals = map[pifu.Entity]int{}
	}
	return s, nil
}

func storeState(ctx context.Context, store jetstream.ObjectStore, vendor, tenant string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := store.PutBytes(ctx, stateName(vendor, tenant), b); err != nil {
		return fmt.Errorf("store the fan-out state of %s: %w", stateName(vendor, tenant), err)
	}
	return nil
}

// VendorEventID is the id (ce-id and Nats-Msg-Id) of the vendor's copy of
// the canonical event with id canonicalID: the first 16 bytes of
// SHA-256(canonical id, 0, vendor), in hex. The same canonical event gives
// one vendor the same id on every redo, and two vendors different ids.
func VendorEventID(canonicalID, vendor string) string {
	sum := sha256.Sum256([]byte(canonicalID + "\x00" + vendor))
	return hex.EncodeToString(sum[:16])
}
