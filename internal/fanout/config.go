// Package fanout is the stage that delivers the canonical change events to
// each LMS vendor: from the LMS stream to the vendor's own stream
// VENDOR_<vendor> (subjects vendor.<vendor>.<tenant>.>), only the tenants
// linked to the vendor, each record cut to the vendor's profile
// (internal/projection), in the same per-tenant order and between the same
// export.started / export.completed boundaries, which carry the vendor's
// own counts and the checksum of the state the vendor holds.
//
// A vendor's durable consumer on the LMS stream delivers only the
// export.completed events of its tenants, one at a time: an export is
// delivered to a vendor when the canonical one is whole. An export is read
// from the stream (the events of the tenant after the last export the
// vendor has, of this export's id) and decoded once for every vendor of its
// tenant, and held in memory (at most Config.CacheEvents change events;
// an export that does not fit is read from the stream by each vendor, as
// often as it needs). From it each vendor carries the tenant's guardian
// index over the export (for a profile without guardians), projects the
// events to count (vendors alike share both), then projects and publishes
// them with deterministic ids (a hash of the canonical event's id and the
// vendor; vendors alike publish together, each change projected once), and
// stores what the vendor now holds (checksum, totals, index)
// in the object store "fanout" before it acknowledges the export. A
// fan-out killed midway redoes the export: the same ids, which the
// vendor's stream stores once within its duplicate window.
//
// A tenant the configuration no longer links to a vendor, but of which the
// vendor holds state in "fanout", is unlinked when the stage starts: the
// vendor's consumer stops delivering it, one TenantUnlinked
// (vendor.<vendor>.<tenant>.tenant.unlinked) is published on the vendor's
// stream, and the state is removed.
//
// A resync sends a vendor a tenant's whole current state, read from the
// publisher's snapshot and export objects rather than the LMS stream, as
// created events between boundaries marked Resync (resync.go). A vendor
// gets one when it joins a tenant with exported state it has no state of,
// when it asks (vendorreq.<vendor>.resync.<tenant>, request.go) and when an
// operator asks (Fanout.Request); each is stored in "fanout" before it is
// accepted and done by the vendor's loop between two exports.
package fanout

import (
	"errors"
	"fmt"
	"time"

	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// Vendor is one vendor: its name (a subject token), the tenants linked to
// it and its profile.
type Vendor struct {
	Name    string
	Tenants []string
	Profile projection.Profile
}

// Config configures the stage. The zero value of a field means its default.
type Config struct {
	Vendors []Vendor
	// AckWait is how long an export stays with a fan-out that stopped
	// answering before another takes it; while one works on an export it
	// tells the server every AckWait/3. Default 1m.
	AckWait time.Duration
	// Window is the vendor events awaiting their acknowledgement at once,
	// per vendor. Default 8192.
	Window int
	// CacheEvents is the most change events held decoded in memory at
	// once, of the exports the vendors are delivering (each export is read
	// and decoded once for all the vendors of its tenant). An export that
	// does not fit is read and decoded by each vendor from the stream, as
	// often as it needs. Negative: none held. Default DefaultCacheEvents,
	// 250,000 (about 190 MB; a medium municipality's first export is about
	// 40,000, a large one's about 800,000).
	CacheEvents int
	// Replicas of the consumers: 1 embedded, 3 in a cluster. Default 1.
	Replicas int
	// Poll is how long one wait for the next export lasts before the stage
	// looks at its context again. Default 2s.
	Poll time.Duration
	// Retry is the wait before an export that failed is tried again.
	// Default 5s.
	Retry time.Duration
}

func (c Config) withDefaults() Config {
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.Window == 0 {
		c.Window = 8192
	}
	if c.CacheEvents == 0 {
		c.CacheEvents = DefaultCacheEvents
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Poll == 0 {
		c.Poll = 2 * time.Second
	}
	if c.Retry == 0 {
		c.Retry = 5 * time.Second
	}
	return c
}

// Validate reports every vendor or setting that is wrong.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, v := range c.Vendors {
		if err := messages.ValidateToken("vendor", v.Name); err != nil {
			errs = append(errs, fmt.Errorf("fanout: vendor %d: %w", i, err))
		} else if seen[v.Name] {
			errs = append(errs, fmt.Errorf("fanout: vendor %q is given twice", v.Name))
		}
		seen[v.Name] = true
		for _, t := range v.Tenants {
			if err := messages.ValidateTenant(t); err != nil {
				errs = append(errs, fmt.Errorf("fanout: vendor %q: %w", v.Name, err))
			}
		}
	}
	if c.AckWait < 0 || c.Window < 0 || c.Replicas < 0 || c.Poll < 0 || c.Retry < 0 {
		errs = append(errs, errors.New("fanout: a negative duration or size"))
	}
	return errors.Join(errs...)
}

// DefaultCacheEvents is Config.CacheEvents' default.
const DefaultCacheEvents = 250_000

// ConsumerName is the durable consumer of vendor on the LMS stream.
func ConsumerName(vendor string) string { return "fanout-" + vendor }
