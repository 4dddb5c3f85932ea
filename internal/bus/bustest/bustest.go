// Package bustest is the JetStream world of every package's tests: an
// in-process nats-server (or a 3-node cluster of them) on free ports with its
// store in the test's temporary directory, a connection or a provisioned bus
// on it, and every message a stream holds, to count, decode or check.
// Everything it starts is stopped at the end of the test.
package bustest

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msgs returns every message stream holds, in order. A message removed
// while it is read (an acknowledged job of a work queue) is left out; any
// other error fails the test.
func Msgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s, message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// NATSMsg is m as a nats.Msg, for messages.Decode.
func NATSMsg(m *jetstream.RawStreamMsg) *nats.Msg {
	return &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}
}
