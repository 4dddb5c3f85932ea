package telemetry

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"
)

// Middleware is a watermill handler middleware that continues the trace a
// consumed message carries in its metadata: it starts a consumer span named
// spanName as the child of the sender's span, with the attributes attrs
// returns for the message (nil attrs: none), puts the span in the message's
// context for the handler, records the handler's error on it, and injects
// the span's context into every message the handler produces. It decides
// nothing: it returns what the handler returned. The stage runtime
// (internal/worker) adds it inside its classification, so the span records
// the handler's own error and a dead letter carries the span's trace id.
func Middleware(tracer trace.Tracer, spanName string, attrs func(*message.Message) []Attr) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := ExtractWatermill(msg.Context(), msg)
			var as []Attr
			if attrs != nil {
				as = attrs(msg)
			}
			ctx, span := Start(ctx, tracer, spanName, trace.SpanKindConsumer, as...)
			defer span.End()
			msg.SetContext(ctx)
			produced, err := h(msg)
			RecordError(span, err)
			for _, p := range produced {
				InjectWatermill(ctx, p)
			}
			return produced, err
		}
	}
}
