package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RawOption changes what MeasureRawPublish sends.
type RawOption func(*rawOptions)

type rawOptions struct{ msgID bool }

// WithMsgID gives every message a unique Nats-Msg-Id, as the pipeline's
// events carry, so the server's duplicate tracking is part of the cost.
func WithMsgID() RawOption { return func(o *rawOptions) { o.msgID = true } }

// MeasureRawPublish publishes count messages of size bytes to subject (which
// a stream must capture) with asynchronous JetStream publishes, bounded by
// the JetStream context's max-pending window, waits for every
// acknowledgement and returns the rate in messages per second, from the first
// publish to the last acknowledgement. It is the raw baseline the pipeline's
// event rate is compared with. Any failed publish is an error. Cancelling
// ctx stops the run and returns ctx's error.
func MeasureRawPublish(ctx context.Context, js jetstream.JetStream, subject string, size, count int, opts ...RawOption) (msgsPerSec float64, err error) {
	if size < 0 || count <= 0 {
		return 0, fmt.Errorf("measure raw publish: size %d and count %d must be positive", size, count)
	}
	var o rawOptions
	for _, f := range opts {
		f(&o)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	futures := make([]jetstream.PubAckFuture, 0, count)
	start := time.Now()
	for i := range count {
		if i%1024 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		m := &nats.Msg{Subject: subject, Data: payload}
		if o.msgID {
			m.Header = nats.Header{nats.MsgIdHdr: {prefix + strconv.Itoa(i)}}
		}
		f, err := PublishAsync(ctx, js, m)
		if err != nil {
			return 0, fmt.Errorf("measure raw publish: message %d: %w", i, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	elapsed := time.Since(start)
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				return 0, fmt.Errorf("measure raw publish: message %d stored as a duplicate", i)
			}
		case err := <-f.Err():
			return 0, fmt.Errorf("measure raw publish: message %d: %w", i, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return float64(count) / elapsed.Seconds(), nil
}

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
