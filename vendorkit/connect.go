package vendorkit

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// Options are the connection options a vendor's client needs: the inbox
// prefix its NATS user may receive on (_INBOX_<vendor>), a name, and
// reconnections without end (a server that restarts is waited for).
func Options(vendor string) []nats.Option {
	return []nats.Option{
		nats.CustomInboxPrefix("_INBOX_" + vendor),
		nats.Name("vendorkit " + vendor),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
}

// Connect connects to the NATS servers at url (comma-separated) as vendor:
// Options(vendor), then opts (the user and password: nats.UserInfo).
func Connect(url, vendor string, opts ...nats.Option) (*nats.Conn, error) {
	if err := messages.ValidateVendor(vendor); err != nil {
		return nil, fmt.Errorf("vendorkit: %w", err)
	}
	nc, err := nats.Connect(url, append(Options(vendor), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("vendorkit: connect: %w", err)
	}
	return nc, nil
}
