package vendorkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// MaxResyncReason is the longest reason a resync request may give, in bytes.
const MaxResyncReason = 200

// ResyncReply is skolebuss's answer to a resync request.
type ResyncReply struct {
	// Accepted: the resync is queued (stored durably before the answer);
	// ResyncID names it. Otherwise Error says why not (the tenant is not
	// linked to the vendor, it has no exported state yet, a bad request).
	Accepted bool   `json:"accepted"`
	ResyncID string `json:"resync_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

// resyncRequest is the body of a resync request.
type resyncRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ResyncSubject is the subject a resync of tenant is asked on:
// vendorreq.<vendor>.resync.<tenant>.
func ResyncSubject(vendor, tenant string) (string, error) {
	if err := messages.ValidateVendor(vendor); err != nil {
		return "", fmt.Errorf("vendorkit: %w", err)
	}
	if err := messages.ValidateTenant(tenant); err != nil {
		return "", fmt.Errorf("vendorkit: %w", err)
	}
	return "vendorreq." + vendor + ".resync." + tenant, nil
}

// RequestResync asks skolebuss for a resync of tenant, giving reason (cut
// to MaxResyncReason bytes), and returns its answer. An error is a request
// that got no answer (nobody answers, a timeout, ctx cancelled) or an
// answer that does not decode. The kit asks by itself when a check fails;
// this is for a vendor that wants a resync for reasons of its own (it
// restored an old backup of its store, say).
func (k *Kit) RequestResync(ctx context.Context, tenant, reason string) (ResyncReply, error) {
	subj, err := ResyncSubject(k.cfg.Vendor, tenant)
	if err != nil {
		return ResyncReply{}, err
	}
	if len(reason) > MaxResyncReason {
		reason = reason[:MaxResyncReason]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1] // a character cut in two
		}
	}
	body, _ := json.Marshal(resyncRequest{Reason: reason})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	m, err := k.nc.RequestWithContext(ctx, subj, body)
	if err != nil {
		return ResyncReply{}, fmt.Errorf("vendorkit: resync request for tenant %s: %w", tenant, err)
	}
	var rep ResyncReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return ResyncReply{}, fmt.Errorf("vendorkit: resync reply for tenant %s: %w", tenant, err)
	}
	if !rep.Accepted && rep.Error == "" {
		return rep, errors.New("vendorkit: resync reply neither accepted nor saying why")
	}
	return rep, nil
}

// resyncWant is a resync the kit wants for a tenant.
type resyncWant struct {
	reason string
	next   time.Time // when to ask (again)
}

// wantResync notes that tenant needs a resync, unless one is accepted and
// not yet started.
func (k *Kit) wantResync(tenant, reason string) {
	k.mu.Lock()
	st := k.tenant(tenant)
	if st.ResyncID == "" && k.resyncs[tenant] == nil {
		k.resyncs[tenant] = &resyncWant{reason: reason}
		st.ResyncPending = true
	}
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// resyncLoop asks for the wanted resyncs until ctx ends: again after
// Config.ResyncRetry while unanswered or refused, and when an accepted one
// has not started within Config.ResyncRetry.
func (k *Kit) resyncLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		case <-tick.C:
		}
		now := time.Now()
		type ask struct{ tenant, reason string }
		var due []ask
		k.mu.Lock()
		for tenant, w := range k.resyncs {
			if !now.Before(w.next) {
				due = append(due, ask{tenant, w.reason})
				w.next = now.Add(k.cfg.ResyncRetry)
			}
		}
		k.mu.Unlock()
		for _, a := range due {
			rep, err := k.RequestResync(ctx, a.tenant, a.reason)
			switch {
			case err != nil:
				k.cfg.Logger.Warn("vendorkit: resync request unanswered; asking again later", "tenant", a.tenant, "err", err, "after", k.cfg.ResyncRetry)
			case !rep.Accepted:
				k.cfg.Logger.Warn("vendorkit: resync refused; asking again later", "tenant", a.tenant, "reason", rep.Error, "after", k.cfg.ResyncRetry)
			default:
				k.cfg.Logger.Info("vendorkit: resync accepted", "tenant", a.tenant, "resync", rep.ResyncID)
				k.mu.Lock()
				if w := k.resyncs[a.tenant]; w != nil {
					// Kept until its export.started, asked again if it has
					// not come within ResyncRetry.
					st := k.tenant(a.tenant)
					st.ResyncID, st.ResyncPending = rep.ResyncID, false
				}
				k.mu.Unlock()
			}
		}
	}
}
