// Package bus is skolebuss's access to NATS JetStream: an embedded
// nats-server for the demo, the tests and single-machine runs; a connection
// to it or to any external server or cluster; the provisioning of the
// streams, object stores and key-value buckets the stages share; and the raw
// publish measurement the pipeline benchmark compares with.
package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process nats-server.
type EmbeddedConfig struct {
	// DataDir holds JetStream's file storage. Required; created if missing.
	DataDir string
	// Host and Port are where clients connect. Default 127.0.0.1:4222;
	// Port -1 picks a free port (tests).
	Host string
	Port int
	// SyncAlways makes JetStream flush every write to disk before it
	// acknowledges it (nats-server sync_interval: always). Default false:
	// JetStream's own default, which acknowledges writes that are in the OS
	// page cache and flushes them every two minutes. An acknowledged write can
	// then be lost to a power failure or an OS crash (not to a crash of this
	// process). skolebuss keeps the default because the design heals such a
	// loss: the tenant snapshot is the truth and the export.completed
	// checksum lets a vendor detect a gap and resync; flushing every write
	// costs about a factor of 10 to 20 in publish rate (see
	// BenchmarkRawPublish). Turn it on where a lost acknowledged event
	// matters more than throughput.
	SyncAlways bool
	// ServerName names the server in logs and cluster views. Default "skolebuss".
	ServerName string
	// ReadyTimeout bounds the wait for the server to accept clients. Default 10s.
	ReadyTimeout time.Duration
}

func (c EmbeddedConfig) withDefaults() EmbeddedConfig {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 4222
	}
	if c.ServerName == "" {
		c.ServerName = "skolebuss"
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	return c
}

// Validate reports the first field that is missing or out of range.
func (c EmbeddedConfig) Validate() error {
	c = c.withDefaults()
	if c.DataDir == "" {
		return errors.New("embedded nats: data_dir is required")
	}
	if c.Port < -1 || c.Port > 65535 {
		return fmt.Errorf("embedded nats: port %d is out of range (-1 for a random port)", c.Port)
	}
	if net.ParseIP(c.Host) == nil && c.Host != "localhost" {
		return fmt.Errorf("embedded nats: host %q is not an IP address or localhost", c.Host)
	}
	return nil
}

// Server is a running embedded nats-server with JetStream on file storage.
// Shutdown stops it; it is safe for concurrent use.
type Server struct {
	ns *server.Server
}

// StartEmbedded starts a nats-server in this process and waits until it
// accepts clients. The caller owns the server and must call Shutdown. Its
// log goes to logger at debug level (warnings and errors at their level).
func StartEmbedded(cfg EmbeddedConfig, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	// A port in use is said at once: the server would only log it and
	// never become ready.
	if cfg.Port > 0 {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w (is another NATS server running there? choose another port)", err)
		}
		ln.Close()
	}
	opts := &server.Options{
		ServerName:             cfg.ServerName,
		Host:                   cfg.Host,
		Port:                   cfg.Port,
		JetStream:              true,
		StoreDir:               cfg.DataDir,
		SyncAlways:             cfg.SyncAlways,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.SetLoggerV2(slogAdapter{logger.With("component", "nats-server")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s: not ready within %s", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.ReadyTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: JetStream did not start (data dir %s)", cfg.DataDir)
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has stopped: streams are
// flushed and file stores closed. Close client connections first for a
// clean drain.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// slogAdapter routes nats-server's log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
