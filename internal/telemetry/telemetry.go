// Package telemetry sets up tracing and metrics for skolebuss and carries
// W3C trace context across NATS and watermill messages, so one export job is
// one trace from requester to fetcher to publisher.
//
// Spans carry only what the attribute helpers of this package allow: tenant,
// application, job and export ids, stage names and counts. Personal data
// and secrets cannot be put on a span through them.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry holds the tracer and meter providers of one process. Its
// methods are safe for concurrent use; Shutdown it once, last.
type Telemetry struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	reader *sdkmetric.ManualReader
	prom   *prometheus.Registry
}

// Option adds to what New sets up.
type Option func(*options)

type options struct {
	processors []sdktrace.SpanProcessor
}

// WithSpanProcessor adds a span processor (tests and the demo use
// tracetest.NewSpanRecorder to look at spans in the process).
func WithSpanProcessor(sp sdktrace.SpanProcessor) Option {
	return func(o *options) { o.processors = append(o.processors, sp) }
}

// New sets up a TracerProvider, exporting by OTLP/HTTP in batches when
// cfg.OTLPEndpoint is set and keeping spans in the process otherwise, with
// cfg.SampleRatio of new traces sampled (a span whose parent came in a
// message follows the parent's decision); and a MeterProvider read in the
// process (Collect). Neither is installed globally: pass Telemetry (or its
// providers) to what needs them. ctx bounds the setup only.
func New(ctx context.Context, cfg Config, logger *slog.Logger, opts ...Option) (*Telemetry, error) {
	if cfg == (Config{}) {
		cfg.SampleRatio = 1
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "skolebuss"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	}
	if cfg.OTLPEndpoint != "" {
		u, _ := url.Parse(cfg.OTLPEndpoint) // Validate parsed it
		path := u.Path
		if path == "" || path == "/" {
			path = "/v1/traces"
		}
		eopts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path)}
		if u.Scheme == "http" {
			eopts = append(eopts, otlptracehttp.WithInsecure())
		}
		exp, err := otlptracehttp.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: otlp exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
		logger.Info("exporting traces", "otlp_endpoint", cfg.OTLPEndpoint, "sample_ratio", cfg.SampleRatio)
	}
	for _, sp := range o.processors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}
	reader := sdkmetric.NewManualReader()
	reg := prometheus.NewRegistry()
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	return &Telemetry{
		tp: sdktrace.NewTracerProvider(tpOpts...),
		mp: sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader), sdkmetric.WithReader(promExp),
			sdkmetric.WithView(SecondsView)),
		reader: reader,
		prom:   reg,
	}, nil
}

// SecondsBuckets are the bucket boundaries of every histogram measured in
// seconds (unit "s"): from a few milliseconds (a redelivered job announced
// again) to an hour (a large export under a slow upstream, its deadline
// half an hour). The SDK's default boundaries (0, 5, 10, 25 ... 10000) are
// made for milliseconds: on seconds they put every stage's work under 5 s in
// one bucket.
var SecondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// SecondsView gives every histogram in seconds the SecondsBuckets, whichever
// package made it: New's meter provider has it.
var SecondsView = sdkmetric.NewView(
	sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: SecondsBuckets}},
)

// TracerProvider is the process's tracer provider.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider is the process's meter provider.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// Tracer is a tracer named for the instrumenting package
// (github.com/skolebuss/skolebuss/internal/...).
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.tp.Tracer(name) }

// Meter is a meter named for the instrumenting package.
func (t *Telemetry) Meter(name string) metric.Meter { return t.mp.Meter(name) }

// Collect reads the current value of every metric (the demo's summary and
// tests use it).
func (t *Telemetry) Collect(ctx context.Context) (metricdata.ResourceMetrics, error) {
	var rm metricdata.ResourceMetrics
	err := t.reader.Collect(ctx, &rm)
	return rm, err
}

// Shutdown flushes every span still buffered to the exporter and stops both
// providers; later spans are dropped. ctx bounds the flush: when it ends,
// what is not exported is lost and its error returned.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}

// MetricsHandler serves every metric of this process in the Prometheus text
// format, for a scrape of /metrics.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.prom, promhttp.HandlerOpts{})
}

// ServeMetrics serves MetricsHandler at /metrics on addr until ctx ends. An
// empty addr serves nothing and returns at once. The listener is bound before
// ServeMetrics returns, so a bad address is reported at start.
func (t *Telemetry) ServeMetrics(ctx context.Context, addr string, logger *slog.Logger) (<-chan error, error) {
	done := make(chan error, 1)
	if addr == "" {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: metrics address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
		close(done)
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return done, nil
}
