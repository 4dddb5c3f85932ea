package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotProvisioned is wrapped by Verify's error for a stream or store that
// does not exist.
var ErrNotProvisioned = errors.New("not provisioned")

// Verify checks that each stream of names exists (an object store's as
// OBJ_<bucket>, a key-value bucket's as KV_<bucket>) without creating or
// changing anything, and returns handles to the pipeline's stores among
// them (the others nil). A stream that does not exist is an error wrapping
// ErrNotProvisioned that says to run `skolebuss provision`.
func Verify(ctx context.Context, js jetstream.JetStream, names []string) (*Stores, error) {
	var s Stores
	for _, name := range names {
		var err error
		switch {
		case strings.HasPrefix(name, "OBJ_"):
			var os jetstream.ObjectStore
			os, err = js.ObjectStore(ctx, strings.TrimPrefix(name, "OBJ_"))
			switch strings.TrimPrefix(name, "OBJ_") {
			case ObjectExports:
				s.Exports = os
			case ObjectSnapshots:
				s.Snapshots = os
			}
		case strings.HasPrefix(name, "KV_"):
			var kv jetstream.KeyValue
			kv, err = js.KeyValue(ctx, strings.TrimPrefix(name, "KV_"))
			switch strings.TrimPrefix(name, "KV_") {
			case KVQuota:
				s.Quota = kv
			case KVRateLimit:
				s.RateLimit = kv
			case KVAttempts:
				s.Attempts = kv
			}
		default:
			_, err = js.Stream(ctx, name)
		}
		if err != nil {
			return nil, verifyError(name, err)
		}
	}
	return &s, nil
}

// VerifyVendors is Verify for what ProvisionVendors makes: each vendor's
// stream and the fan-out's object store, which it returns.
func VerifyVendors(ctx context.Context, js jetstream.JetStream, vendors []string) (jetstream.ObjectStore, error) {
	for _, v := range vendors {
		if _, err := js.Stream(ctx, VendorStream(v)); err != nil {
			return nil, verifyError(VendorStream(v), err)
		}
	}
	store, err := js.ObjectStore(ctx, ObjectFanout)
	if err != nil {
		return nil, verifyError("OBJ_"+ObjectFanout, err)
	}
	return store, nil
}

func verifyError(name string, err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("stream %s does not exist (%w): run `skolebuss provision` with this configuration first", name, ErrNotProvisioned)
	}
	return fmt.Errorf("look up stream %s: %w (a refused call waits for its deadline: may this user read the stream's info?)", name, err)
}
