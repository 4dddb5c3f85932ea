package bus

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync is js.PublishMsgAsync that waits, instead of failing, while
// the JetStream context's window of unacknowledged publishes is full (a slow
// server, as with sync_always, stalls the window longer than the client's
// stall wait): it retries until the window has room or ctx is done. Other
// errors are returned as they are.
func PublishAsync(ctx context.Context, js jetstream.JetStream, m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	for {
		f, err := js.PublishMsgAsync(m, opts...)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}
