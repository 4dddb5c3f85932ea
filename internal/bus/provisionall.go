package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/nats-io/nats.go/jetstream"
)

// Change is what ProvisionAll did to one stream or store.
type Change struct {
	// Stream is its stream's name (OBJ_<bucket>, KV_<bucket> for stores).
	Stream string
	// Action is "created", "updated" or "unchanged".
	Action string
}

// ProvisionAll provisions everything a pipeline with vendors needs
// (Provision, then ProvisionVendors) and reports, per stream and store,
// whether it was created, updated or already as cfg says. It is what
// `skolebuss provision` runs, once at deploy and after a change of the
// configuration's streams or vendors; it is idempotent.
func ProvisionAll(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig, vendors []string) ([]Change, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := ProvisionedStreams(vendors)
	before := make(map[string]*jetstream.StreamConfig, len(names))
	for _, n := range names {
		sc, err := streamConfig(ctx, js, n)
		if err != nil {
			return nil, err
		}
		before[n] = sc
	}
	if _, err := Provision(ctx, js, cfg); err != nil {
		return nil, err
	}
	if _, err := ProvisionVendors(ctx, js, cfg, vendors); err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(names))
	for _, n := range names {
		after, err := streamConfig(ctx, js, n)
		if err != nil {
			return nil, err
		}
		c := Change{Stream: n, Action: "unchanged"}
		switch {
		case before[n] == nil:
			c.Action = "created"
		case after == nil || !reflect.DeepEqual(*before[n], *after):
			c.Action = "updated"
		}
		out = append(out, c)
	}
	return out, nil
}

// ProvisionedStreams are the names of the streams ProvisionAll makes, in
// its order.
func ProvisionedStreams(vendors []string) []string {
	var out []string
	for _, sc := range (ProvisionConfig{}).StreamConfigs() {
		out = append(out, sc.Name)
	}
	out = append(out, "OBJ_"+ObjectExports, "OBJ_"+ObjectSnapshots, "KV_"+KVQuota, "KV_"+KVRateLimit, "KV_"+KVAttempts)
	for _, v := range vendors {
		out = append(out, VendorStream(v))
	}
	return append(out, "OBJ_"+ObjectFanout)
}

// streamConfig is stream name's configuration, nil when it does not exist.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	sc := s.CachedInfo().Config
	return &sc, nil
}
