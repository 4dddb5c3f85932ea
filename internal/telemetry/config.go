package telemetry

import (
	"fmt"
	"net/url"
)

// Config configures traces and metrics.
type Config struct {
	// OTLPEndpoint is the OTLP/HTTP collector, e.g. http://127.0.0.1:4318.
	// Empty: spans and metrics stay in the process (no export).
	OTLPEndpoint string
	// ServiceName is the service.name resource attribute. Default "skolebuss".
	ServiceName string
	// SampleRatio is the share of new traces sampled, 0..1 (a trace started
	// upstream keeps its parent's decision). Default 1 when the whole Config
	// is zero; an explicit 0 samples nothing.
	SampleRatio float64
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	if c.SampleRatio < 0 || c.SampleRatio > 1 || c.SampleRatio != c.SampleRatio {
		return fmt.Errorf("telemetry: sample_ratio %v is not in [0, 1]", c.SampleRatio)
	}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("telemetry: otlp_endpoint %q is not an http(s) URL", c.OTLPEndpoint)
		}
	}
	return nil
}
