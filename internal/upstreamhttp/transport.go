// Package upstreamhttp is the HTTP transport skolebuss talks to the upstream
// with (the token endpoint in internal/auth, the export API in
// internal/flytapi): bounded connects, TLS handshakes and waits for an
// answer's headers, kept-alive connections.
package upstreamhttp

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns a transport that gives up a connect or a TLS
// handshake after connect, and the wait for an answer's headers after
// header, keeping up to idlePerHost idle connections a host.
func NewTransport(connect, header time.Duration, idlePerHost int) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: header,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}
