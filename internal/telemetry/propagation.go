package telemetry

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// propagator is W3C Trace Context only: baggage is not propagated, as it
// could carry anything, personal data included. It is stateless.
var propagator = propagation.TraceContext{}

// NATSHeaderCarrier adapts nats.Header to a TextMapCarrier. NATS header
// names are case-sensitive; the trace context travels as "traceparent" and
// "tracestate".
type NATSHeaderCarrier nats.Header

var _ propagation.TextMapCarrier = NATSHeaderCarrier(nil)

func (c NATSHeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c NATSHeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c NATSHeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// MetadataCarrier adapts watermill metadata to a TextMapCarrier. With
// watermill-nats the metadata become NATS headers and back, so the two
// carriers interoperate.
type MetadataCarrier message.Metadata

var _ propagation.TextMapCarrier = MetadataCarrier(nil)

func (c MetadataCarrier) Get(key string) string { return c[key] }
func (c MetadataCarrier) Set(key, value string) { c[key] = value }
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectNATS writes the span context of ctx into m's header (creating the
// header if needed). Without a valid span in ctx it writes nothing.
func InjectNATS(ctx context.Context, m *nats.Msg) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	propagator.Inject(ctx, NATSHeaderCarrier(m.Header))
}

// ExtractNATS returns ctx with the remote span context carried in h, so a
// span started from it continues the sender's trace.
func ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, NATSHeaderCarrier(h))
}

// InjectWatermill writes the span context of ctx into m's metadata.
func InjectWatermill(ctx context.Context, m *message.Message) {
	if m.Metadata == nil {
		m.Metadata = message.Metadata{}
	}
	propagator.Inject(ctx, MetadataCarrier(m.Metadata))
}

// ExtractWatermill returns ctx with the remote span context carried in m's
// metadata.
func ExtractWatermill(ctx context.Context, m *message.Message) context.Context {
	return propagator.Extract(ctx, MetadataCarrier(m.Metadata))
}

// TraceID is the trace id of the span in ctx, or "" (for dead letters and
// logs).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
