// Package rawpublish measures the raw JetStream publish rate: asynchronous
// publishes of plain messages, with nothing of the pipeline around them. It
// is the baseline skolebuss's benchmarks (skolebuss bench, the publisher's
// go test benchmarks) set the pipeline's event rate against, measured in the
// same run on the same server.
package rawpublish

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
)

// Option changes what Measure sends.
type Option func(*options)

type options struct{ msgID bool }

// WithMsgID gives every message a unique Nats-Msg-Id, as the pipeline's
// events carry, so the server's duplicate tracking is part of the cost.
func WithMsgID() Option { return func(o *options) { o.msgID = true } }

// Measure publishes count messages of size bytes to subject (which
// a stream must capture) with asynchronous JetStream publishes, bounded by
// the JetStream context's max-pending window, waits for every
// acknowledgement and returns the rate in messages per second, from the first
// publish to the last acknowledgement. It is the raw baseline the pipeline's
// event rate is compared with. Any failed publish is an error. Cancelling
// ctx stops the run and returns ctx's error.
func Measure(ctx context.Context, js jetstream.JetStream, subject string, size, count int, opts ...Option) (msgsPerSec float64, err error) {
	if size < 0 || count <= 0 {
		return 0, fmt.Errorf("measure raw publish: size %d and count %d must be positive", size, count)
	}
	var o options
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
		f, err := bus.PublishAsync(ctx, js, m)
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
