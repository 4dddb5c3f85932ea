package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lastMsg returns the last message on subject in stream and the time the
// server stored it; jetstream.ErrMsgNotFound (wrapped) when there is none.
func lastMsg(ctx context.Context, js jetstream.JetStream, stream, subject string) (*nats.Msg, time.Time, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("last message on %s: %w", subject, err)
	}
	return &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data}, raw.Time, nil
}
