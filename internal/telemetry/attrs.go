package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// Attr is a span attribute that this package allows: only the constructors
// below make one, so a span can carry tenant, application, job and export
// ids, a stage, counts and error classes, and nothing else: no names, no
// national ids, no secrets.
type Attr struct{ kv attribute.KeyValue }

// Attribute keys.
const (
	KeyTenant      = "skolebuss.tenant"
	KeyApplication = "skolebuss.application"
	KeyJob         = "skolebuss.job_id"
	KeyExport      = "skolebuss.export_id"
	KeyStage       = "skolebuss.stage"
	KeyCountPrefix = "skolebuss.count."
	KeyErrorClass  = "skolebuss.error.class"
	KeyErrorReason = "skolebuss.error.reason"
	KeyQuotaPrefix = "skolebuss.quota."
)

func Tenant(id string) Attr        { return Attr{attribute.String(KeyTenant, id)} }
func Application(name string) Attr { return Attr{attribute.String(KeyApplication, name)} }
func Job(id string) Attr           { return Attr{attribute.String(KeyJob, id)} }
func Export(id string) Attr        { return Attr{attribute.String(KeyExport, id)} }
func Stage(name string) Attr       { return Attr{attribute.String(KeyStage, name)} }

// Count is skolebuss.count.<what>: what is a fixed word of lower-case
// letters, digits and '_' (person_created, bytes, attempts); anything else
// panics, as it is a programming error, not data.
func Count(what string, n int64) Attr {
	for i := 0; i < len(what); i++ {
		c := what[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') || len(what) > 40 {
			panic(fmt.Sprintf("telemetry.Count: %q is not a count name", what))
		}
	}
	if what == "" {
		panic("telemetry.Count: empty count name")
	}
	return Attr{attribute.Int64(KeyCountPrefix+what, n)}
}

// QuotaUse is the application's use of one quota period when a request was
// counted: skolebuss.quota.<period>.used and skolebuss.quota.<period>.remaining.
// period is "daily" or "monthly"; anything else panics, as it is a
// programming error, not data.
func QuotaUse(period string, used, remaining int64) []Attr {
	if period != "daily" && period != "monthly" {
		panic(fmt.Sprintf("telemetry.QuotaUse: %q is not a quota period", period))
	}
	return []Attr{{attribute.Int64(KeyQuotaPrefix+period+".used", used)}, {attribute.Int64(KeyQuotaPrefix+period+".remaining", remaining)}}
}

// KeyValues converts attrs for OpenTelemetry APIs (metrics options, events).
func KeyValues(attrs ...Attr) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, len(attrs))
	for i, a := range attrs {
		kvs[i] = a.kv
	}
	return kvs
}

// Start starts a span with allowed attributes only.
func Start(ctx context.Context, tracer trace.Tracer, name string, kind trace.SpanKind, attrs ...Attr) (context.Context, trace.Span) {
	return tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(KeyValues(attrs...)...))
}

// Set adds allowed attributes to span.
func Set(span trace.Span, attrs ...Attr) { span.SetAttributes(KeyValues(attrs...)...) }

// RecordError marks span as failed with err's class and reason (from
// internal/failure). The error text is recorded too: errors in skolebuss
// never carry personal data or secrets (see STYLE and internal/failure).
// A nil err does nothing.
func RecordError(span trace.Span, err error) {
	if err == nil {
		return
	}
	span.SetAttributes(attribute.String(KeyErrorClass, failure.ClassOf(err).String()),
		attribute.String(KeyErrorReason, failure.ReasonOf(err)))
	span.RecordError(err)
	span.SetStatus(codes.Error, failure.ReasonOf(err))
}
