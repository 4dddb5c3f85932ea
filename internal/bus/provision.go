package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// Names of the streams, object stores and key-value buckets.
const (
	StreamJobs    = "JOBS"
	StreamExports = "EXPORTS"
	StreamLMS     = "LMS"
	StreamDLQ     = "DLQ"
	StreamAlerts  = "ALERTS"

	ObjectExports   = "exports"   // raw exports, written by fetchers
	ObjectSnapshots = "snapshots" // each tenant's last applied state, for diffing

	KVQuota     = "quota"     // daily and monthly quota counters per application
	KVRateLimit = "ratelimit" // token buckets per application
	KVAttempts  = "attempts"  // real (transient) attempts per stage message (internal/worker)
)

// ProvisionConfig sizes what Provision creates.
type ProvisionConfig struct {
	// Replicas of every stream and store: 1 on the embedded server, 3 on a
	// 3-node cluster. Default 1.
	Replicas int
	// DuplicateWindow of the LMS stream: within it a republished event id is
	// stored once. A publisher's redo does not rely on it. Default 1h.
	DuplicateWindow time.Duration
	// JobsDuplicateWindow of the JOBS stream: requests for one schedule slot
	// within it collapse to one job. Default 1h.
	JobsDuplicateWindow time.Duration
	// LMSMaxAge is how long events are kept for vendors to read or re-read.
	// Default 30 days.
	LMSMaxAge time.Duration
	// ExportsMaxAge is how long fetched-export messages are kept for
	// reprocessing. Default 7 days. The raw exports in the object store have
	// no age limit: the publisher deletes those no snapshot needs.
	ExportsMaxAge time.Duration
	// DLQMaxAge is how long dead letters wait for an operator. Default 30 days.
	DLQMaxAge time.Duration
}

func (c ProvisionConfig) withDefaults() ProvisionConfig {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = time.Hour
	}
	if c.JobsDuplicateWindow == 0 {
		c.JobsDuplicateWindow = time.Hour
	}
	if c.LMSMaxAge == 0 {
		c.LMSMaxAge = 30 * 24 * time.Hour
	}
	if c.ExportsMaxAge == 0 {
		c.ExportsMaxAge = 7 * 24 * time.Hour
	}
	if c.DLQMaxAge == 0 {
		c.DLQMaxAge = 30 * 24 * time.Hour
	}
	return c
}

// Validate reports the first field out of range.
func (c ProvisionConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("nats: replicas %d out of range 1..5", c.Replicas)
	case c.DuplicateWindow < 0 || c.DuplicateWindow > c.LMSMaxAge:
		return fmt.Errorf("nats: duplicate window %s must be positive and within the LMS max age %s", c.DuplicateWindow, c.LMSMaxAge)
	case c.JobsDuplicateWindow < 0:
		return errors.New("nats: jobs duplicate window is negative")
	case c.LMSMaxAge < 0 || c.ExportsMaxAge < 0 || c.DLQMaxAge < 0:
		return errors.New("nats: a max age is negative")
	}
	return nil
}

// StreamConfigs are the stream configurations Provision applies, for tests
// and for operators who create streams by hand.
func (c ProvisionConfig) StreamConfigs() []jetstream.StreamConfig {
	c = c.withDefaults()
	return []jetstream.StreamConfig{
		{
			Name:        StreamJobs,
			Description: "export jobs, one consumer takes each (work queue)",
			Subjects:    []string{messages.JobsSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Duplicates:  c.JobsDuplicateWindow,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        StreamExports,
			Description: "fetched exports, pointing into the exports object store",
			Subjects:    []string{messages.ExportsSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.ExportsMaxAge,
			Duplicates:  time.Hour,
		},
		{
			Name:        StreamLMS,
			Description: "canonical change events per tenant, deduplicated by event id",
			Subjects:    []string{messages.LMSSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.LMSMaxAge,
			Duplicates:  c.DuplicateWindow,
			Discard:     jetstream.DiscardOld,
		},
		{
			Name:        StreamDLQ,
			Description: "messages a stage gave up on, with reason, attempts and trace id",
			Subjects:    []string{messages.DLQSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
			Duplicates:  time.Hour,
		},
		{
			Name:        StreamAlerts,
			Description: "quota alerts per application",
			Subjects:    []string{messages.AlertsSubjects},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			MaxAge:      c.DLQMaxAge,
			Duplicates:  time.Hour,
		},
	}
}

// Stores are the object stores and key-value buckets of the pipeline.
// Handles are safe for concurrent use.
type Stores struct {
	Exports   jetstream.ObjectStore
	Snapshots jetstream.ObjectStore
	Quota     jetstream.KeyValue
	RateLimit jetstream.KeyValue
	Attempts  jetstream.KeyValue
}

// AttemptsConfig is the configuration of the key-value bucket KVAttempts.
func (c ProvisionConfig) AttemptsConfig() jetstream.KeyValueConfig {
	c = c.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      KVAttempts,
		Description: "real (transient) attempts per stage message",
		TTL:         7 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// Provision creates the streams, object stores and key-value buckets, or
// updates them to cfg where they exist. It is idempotent and safe to run
// from every process at start, concurrently. A change the server cannot
// make in place (for example the retention of an existing stream) is an
// error naming the stream. ctx bounds the whole provisioning.
func Provision(ctx context.Context, js jetstream.JetStream, cfg ProvisionConfig) (*Stores, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	for _, sc := range cfg.StreamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	var s Stores
	var err error
	if s.Exports, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ObjectExports, Description: "raw PIFU exports as fetched",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, Compression: true,
		// No TTL: a tenant's snapshot needs the export it came from for the
		// next diff however long ago that was, and a held export must wait
		// for its replay. The publisher deletes every export no snapshot needs.
	}); err != nil {
		return nil, fmt.Errorf("provision object store %s: %w", ObjectExports, err)
	}
	if s.Snapshots, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: ObjectSnapshots, Description: "each tenant's last applied state",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("provision object store %s: %w", ObjectSnapshots, err)
	}
	if s.Quota, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: KVQuota, Description: "quota counters per application and period",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, History: 1,
	}); err != nil {
		return nil, fmt.Errorf("provision key-value bucket %s: %w", KVQuota, err)
	}
	if s.RateLimit, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: KVRateLimit, Description: "rate-limit token buckets per application",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, History: 1,
	}); err != nil {
		return nil, fmt.Errorf("provision key-value bucket %s: %w", KVRateLimit, err)
	}
	if s.Attempts, err = js.CreateOrUpdateKeyValue(ctx, cfg.AttemptsConfig()); err != nil {
		return nil, fmt.Errorf("provision key-value bucket %s: %w", KVAttempts, err)
	}
	return &s, nil
}
