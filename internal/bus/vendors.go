package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// VendorStreamPrefix starts the name of every vendor's stream:
// VENDOR_<vendor>, the vendor's name as it is.
const VendorStreamPrefix = "VENDOR_"

// ObjectFanout is the object store where the fan-out keeps, per vendor and
// tenant, what it delivered last.
const ObjectFanout = "fanout"

// VendorStream is the name of vendor's stream.
func VendorStream(vendor string) string { return VendorStreamPrefix + vendor }

// VendorStreamConfig is the configuration of vendor's stream: its subjects
// vendor.<vendor>.>, kept as long as the LMS stream, deduplicated on
// Nats-Msg-Id within the LMS stream's duplicate window (a fan-out's redo
// after a crash stores nothing twice).
func (c ProvisionConfig) VendorStreamConfig(vendor string) (jetstream.StreamConfig, error) {
	subj, err := messages.VendorSubjects(vendor)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	c = c.withDefaults()
	return jetstream.StreamConfig{
		Name:        VendorStream(vendor),
		Description: "change events of vendor " + vendor + ", cut to its profile",
		Subjects:    []string{subj},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.LMSMaxAge,
		Duplicates:  c.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}, nil
}

// ProvisionVendors creates or updates the stream of every vendor and the
// fan-out's object store, and returns the store. Like Provision it is
// idempotent and safe to run from every process at start.
func ProvisionVendors(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig, vendors []string) (jetstream.ObjectStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, v := range vendors {
		sc, err := cfg.VendorStreamConfig(v)
		if err != nil {
			return nil, fmt.Errorf("provision the stream of vendor %q: %w", v, err)
		}
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	cfg = cfg.withDefaults()
	store, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ObjectFanout, Description: "what the fan-out delivered last, per vendor and tenant",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("provision object store %s: %w", ObjectFanout, err)
	}
	return store, nil
}
