// Package natsauthtest connects to a NATS server as an LMS vendor's user and
// probes what the server refuses it: each probe returns nil only when the
// server answered with a permissions violation for exactly the subject
// probed, and an error when the vendor was granted it (received a message
// or an answer) or nothing was heard in time. SamePermissions compares the
// permissions a server read from its configuration with natsauth's.
// internal/natsauth's tests, the embedded server's, the demo's and deploy's
// use it.
package natsauthtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Vendor is a vendor's connection with the errors the server sent it.
type Vendor struct {
	NC   *nats.Conn
	JS   jetstream.JetStream
	errs chan error
}

// Connect connects to url as user with password and inbox prefix (a
// vendor's: natsauth.UserName and natsauth.InboxPrefix); the connection is
// closed at the end of the test.
func Connect(t testing.TB, url, user, password, inboxPrefix string) Vendor {
	t.Helper()
	errs := make(chan error, 64)
	nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.CustomInboxPrefix(inboxPrefix),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return Vendor{NC: nc, JS: js, errs: errs}
}

// Reported returns an error the server sent the vendor since the last
// probe, or nil.
func (v Vendor) Reported() error {
	select {
	case err := <-v.errs:
		return err
	default:
		return nil
	}
}

// Wait is how long a probe waits for the server's answer.
const Wait = 5 * time.Second

// violation reports whether err is the server's permissions violation for
// op ("Publish" or "Subscription") to subject exactly.
func violation(err error, op, subject string) bool {
	return errors.Is(err, nats.ErrPermissionViolation) &&
		strings.Contains(err.Error(), fmt.Sprintf("Permissions Violation for %s to %q", op, subject))
}

// RefusedSubscribe subscribes to subject and returns nil when the server
// refuses the subscription with a permissions violation for it. A message
// that admin (a connection with every right) publishes on publishOn
// reaching the subscription is an error at once: the subscription was
// granted.
func (v Vendor) RefusedSubscribe(admin *nats.Conn, subject, publishOn string) error {
	sub, err := v.NC.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := v.NC.Flush(); err != nil {
		return err
	}
	if err := admin.Publish(publishOn, []byte("probe")); err != nil {
		return err
	}
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		select {
		case err := <-v.errs:
			if violation(err, "Subscription", subject) {
				return nil
			}
			return fmt.Errorf("subscribe %s: another error: %w", subject, err)
		default:
		}
		// A refused subscription returns its violation here too; the
		// asynchronous error above is the one waited for.
		if m, err := sub.NextMsg(20 * time.Millisecond); err == nil {
			return fmt.Errorf("subscribed to %s and received %s", subject, m.Subject)
		}
	}
	return fmt.Errorf("subscribe %s: neither refused nor received anything in %s", subject, Wait)
}

// RefusedRequest sends a request on subject and returns nil when the server
// refuses the publish with a permissions violation for subject; an answer
// (even an error from the JetStream API, which proves the request reached
// it) is an error at once.
func (v Vendor) RefusedRequest(subject string, body []byte) error {
	inbox := v.NC.NewInbox()
	sub, err := v.NC.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := v.NC.PublishRequest(subject, inbox, body); err != nil {
		return err
	}
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		select {
		case err := <-v.errs:
			if violation(err, "Publish", subject) {
				return nil
			}
			return fmt.Errorf("request %s: another error: %w", subject, err)
		default:
		}
		if m, err := sub.NextMsg(20 * time.Millisecond); err == nil {
			if m.Header.Get("Status") == "503" {
				return fmt.Errorf("request %s: no responders, not refused", subject)
			}
			return fmt.Errorf("request %s answered: %.200s", subject, m.Data)
		}
	}
	return fmt.Errorf("request %s: neither refused nor answered in %s", subject, Wait)
}

// RefusedAPI calls the JetStream API through nats.go's jetstream package
// (call) and returns nil when the call fails and the server reported a
// permissions violation for subject.
func (v Vendor) RefusedAPI(subject string, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-v.errs:
		// A refused call waits for an answer that never comes: end it.
		cancel()
		if callErr := <-done; callErr == nil {
			return fmt.Errorf("%s: the call succeeded", subject)
		}
		if violation(err, "Publish", subject) {
			return nil
		}
		return fmt.Errorf("%s: another error: %w", subject, err)
	case err := <-done:
		if err == nil {
			return fmt.Errorf("%s: the call succeeded", subject)
		}
		return fmt.Errorf("%s: the call failed (%w) and the server reported no violation", subject, err)
	}
}

// RefusedConsumer tries to make a durable consumer on stream and returns
// nil when the server refuses it with a permissions violation.
func (v Vendor) RefusedConsumer(stream string) error {
	return v.RefusedAPI("$JS.API.CONSUMER.CREATE."+stream+".sneak", func(ctx context.Context) error {
		_, err := v.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "sneak"})
		return err
	})
}

// SamePermissions fails t unless got, the permissions a NATS server holds
// for user who (read from its configuration), are want (natsauth's, as
// Permissions.Server gives them): the same publish and subscribe allow and
// deny lists, in order, and answers to requests allowed or not alike.
func SamePermissions(t testing.TB, who string, got, want *server.Permissions) {
	t.Helper()
	if got == nil || got.Publish == nil || got.Subscribe == nil {
		t.Fatalf("%s has permissions %+v", who, got)
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"publish allow", got.Publish.Allow, want.Publish.Allow},
		{"publish deny", got.Publish.Deny, want.Publish.Deny},
		{"subscribe allow", got.Subscribe.Allow, want.Subscribe.Allow},
		{"subscribe deny", got.Subscribe.Deny, want.Subscribe.Deny},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s %s: %q, want %q", who, c.what, c.got, c.want)
		}
	}
	if (got.Response != nil) != (want.Response != nil) {
		t.Errorf("%s may answer requests: %v, want %v", who, got.Response != nil, want.Response != nil)
	}
}
