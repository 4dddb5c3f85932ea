package requester

import (
	"context"
	"hash/fnv"
	"time"
)

// retryWait is the pause before a failed scheduled publish is tried again
// (while its slot is still the current one).
const retryWait = 5 * time.Second

// Slot is the start of the interval window that holds t: t truncated to a
// multiple of interval since the zero time, so every replica computes the
// same slots (for intervals that divide a day, aligned to UTC midnight).
func Slot(t time.Time, interval time.Duration) time.Time {
	return t.UTC().Truncate(interval)
}

// FireTime is when tenant's job for slot is requested: slot plus a
// pseudo-random part of jitter drawn from (tenant, slot), the same in every
// replica, so replicas request a slot at the same moment and tenants with one
// interval are spread over the jitter.
func FireTime(tenant string, slot time.Time, jitter time.Duration) time.Time {
	if jitter <= 0 {
		return slot
	}
	h := fnv.New64a()
	h.Write([]byte(tenant))
	h.Write([]byte(slot.UTC().Format(time.RFC3339Nano)))
	return slot.Add(time.Duration(h.Sum64() % uint64(jitter)))
}

// due is one tenant's next scheduled request.
type due struct {
	t    Tenant
	slot time.Time // the slot to request
	at   time.Time // when to (try to) request it
}

// Run requests every scheduled tenant's export at each slot's fire time
// until ctx is cancelled, then returns nil. At start, a slot whose fire time
// has passed is requested at once: if another replica or an earlier run
// already did within the JOBS stream's duplicate window, it collapses into
// the stored job. A failed publish is retried every few seconds until the
// next slot is due. Tenants with a zero interval are skipped. Run may be
// called by several replicas at once; it is not meant to be called twice on
// one Requester.
func (r *Requester) Run(ctx context.Context) error {
	now := r.cfg.Now()
	var dues []*due
	for _, t := range r.cfg.Tenants {
		if t.Interval <= 0 {
			continue
		}
		s := Slot(now, t.Interval)
		dues = append(dues, &due{t: t, slot: s, at: FireTime(t.ID, s, t.Jitter)})
	}
	r.logger.Info("requester schedule started", "tenants", len(dues))
	if len(dues) == 0 {
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := dues[0]
		for _, d := range dues[1:] {
			if d.at.Before(next.at) {
				next = d
			}
		}
		timer.Reset(max(next.at.Sub(r.cfg.Now()), 0))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := r.cfg.Now()
		for _, d := range dues {
			if d.at.After(now) {
				continue
			}
			r.fire(ctx, d, now)
		}
	}
}

// fire requests d's slot and moves d to its next slot, or schedules a retry.
func (r *Requester) fire(ctx context.Context, d *due, now time.Time) {
	// A requester that slept past whole slots requests the current one only.
	if cur := Slot(now, d.t.Interval); cur.After(d.slot) {
		d.slot = cur
		if fire := FireTime(d.t.ID, cur, d.t.Jitter); fire.After(now) {
			d.at = fire
			return
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := r.scheduled(pctx, d.t, d.slot)
	cancel()
	nextSlot := d.slot.Add(d.t.Interval)
	nextAt := FireTime(d.t.ID, nextSlot, d.t.Jitter)
	if err != nil && ctx.Err() == nil {
		if retry := now.Add(retryWait); retry.Before(nextAt) {
			r.logger.Warn("scheduled export job not published; retrying", "tenant", d.t.ID, "error", err)
			d.at = retry
			return
		}
		r.logger.Error("scheduled export job not published before the next slot", "tenant", d.t.ID, "error", err)
	}
	d.slot, d.at = nextSlot, nextAt
}
