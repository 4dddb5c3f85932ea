package fanout_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/fanout"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/natsauth"
	"github.com/skolebuss/skolebuss/internal/projection"
)

// Under the vendors' real NATS users (natsauth.Write), vendor b's resync
// request resyncs b only: its request for a is refused by the server, and
// a's stream gets nothing from it; b's own request is answered on b's inbox
// and delivered on b's stream.
func TestVendorRequestsResyncOfItsOwnOnly(t *testing.T) {
	roster, _ := projection.ParseProfile()
	w, url := authWorld(t, []fanout.Vendor{{Name: "a", Tenants: []string{tenantA}, Profile: roster},
		{Name: "b", Tenants: []string{tenantA}, Profile: roster}})
	small := newBareWorld(t, "tiny")
	w.docs[tenantA] = small.docs[tenantA]
	w.publishSettled(t, tenantA, 0)
	w.run(t, fanout.Config{})
	for _, v := range []string{"a", "b"} { // both joined: a resync each
		w.waitDeliveries(t, v, tenantA, 1)
	}

	errs := make(chan error, 16)
	vb, err := nats.Connect(url, nats.UserInfo(natsauth.UserName("b"), "pw-b"),
		nats.CustomInboxPrefix(natsauth.InboxPrefix("b")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer vb.Close()
	// b asks for a's resync: the server refuses the publish.
	subjA, _ := messages.ResyncRequestSubject("a", tenantA)
	if _, err := vb.Request(subjA, nil, 2*time.Second); err == nil {
		t.Fatal("vendor b's request for vendor a was answered")
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subjA) {
			t.Fatalf("not the server's refusal: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not refuse vendor b's request for vendor a")
	}
	// b's own: answered on b's inbox, delivered on b's stream.
	r := request(t, vb, "b", tenantA, `{"reason":"permissions test"}`)
	if !r.Accepted {
		t.Fatalf("refused: %+v", r)
	}
	got := w.waitDeliveries(t, "b", tenantA, 2)
	w.checkTruth(t, "b", tenantA, 0, got[1], true)
	// Nothing more for a: one resync, its join.
	if d, _ := w.replay(t, "a", nil); len(d[tenantA]) != 1 {
		t.Errorf("vendor a received %d exports, want its join's only", len(d[tenantA]))
	}
}
