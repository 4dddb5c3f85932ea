package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/auth"
)

// Config says which NATS server to use and how to connect to it.
type Config struct {
	// URL of an external server or cluster (comma-separated seed URLs). Empty
	// means the embedded server of Embedded.
	URL string
	// Embedded configures the in-process server used when URL is empty.
	Embedded EmbeddedConfig
	// CredsFile is a NATS credentials file (JWT and nkey seed), if the server
	// wants one. At most one of CredsFile, User/Password and Token is set.
	CredsFile string
	User      string
	Password  auth.Secret
	Token     auth.Secret
	// Name identifies this client in the server's monitoring. Default "skolebuss".
	Name string
	// InboxPrefix replaces nats.go's "_INBOX" as the prefix of the client's
	// reply subjects: a vendor's user may receive on its own prefix only
	// (natsauth.InboxPrefix). Default "_INBOX".
	InboxPrefix string
	// ReconnectWait is the pause between reconnect attempts. Default 2s.
	// Reconnection never gives up; a publish made while disconnected is
	// buffered up to the client's reconnect buffer.
	ReconnectWait time.Duration
	// ConnectTimeout bounds each dial. Default 5s.
	ConnectTimeout time.Duration
	// Provision is what Open creates or updates at start.
	Provision ProvisionConfig
	// Verify, when not nil, makes Open provision nothing: it checks that
	// each stream named exists (stores by their streams' names, OBJ_<bucket>
	// and KV_<bucket>) and looks up the stores among them, and fails naming
	// the first one missing and `skolebuss provision`. A user that may not
	// create streams (a stage's, in a deployment) opens so.
	Verify []string
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "skolebuss"
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = 2 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	return c
}

// Validate reports the first inconsistent field.
func (c Config) Validate() error {
	n := 0
	if c.CredsFile != "" {
		n++
	}
	if c.User != "" || !c.Password.IsZero() {
		n++
	}
	if !c.Token.IsZero() {
		n++
	}
	if n > 1 {
		return errors.New("nats: set at most one of credentials file, user/password and token")
	}
	if c.URL == "" {
		if n > 0 {
			return errors.New("nats: credentials are for an external server; the embedded one (no url) takes none")
		}
		if err := c.Embedded.Validate(); err != nil {
			return err
		}
	} else if err := validateURLs(c.URL); err != nil {
		return err
	}
	return c.Provision.Validate()
}

func validateURLs(s string) error {
	u, err := url.Parse(firstURL(s))
	if err != nil {
		return fmt.Errorf("nats: url: %w", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("nats: url scheme %q is not nats, tls, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("nats: url has no host")
	}
	return nil
}

func firstURL(s string) string {
	for i := range len(s) {
		if s[i] == ',' {
			return s[:i]
		}
	}
	return s
}

// RedactURL drops the user info (user, password or token) from each URL of
// a comma-separated NATS URL list, for logs and errors.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "[redacted]" + p[at:]
			} else {
				parts[i] = "[redacted]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// Connect dials the server at url with cfg's credentials, name and reconnect
// settings. Disconnects and reconnects are logged. The caller closes the
// connection (Drain for a clean stop). ctx bounds the first connect only.
func Connect(ctx context.Context, url string, cfg Config, logger *slog.Logger) (*nats.Conn, error) {
	cfg = cfg.withDefaults()
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(cfg.ReconnectWait),
		nats.Timeout(cfg.ConnectTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "server", RedactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Error("nats async error", "subject", subj, "error", err)
		}),
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()))
	case !cfg.Token.IsZero():
		opts = append(opts, nats.Token(cfg.Token.Reveal()))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(url), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(url), ctx.Err())
	}
}

// Bus is an open connection to JetStream with everything provisioned: the
// embedded server (if no URL was configured), the connection, the JetStream
// context and the stores. Its fields are safe for concurrent use; Close it
// once.
type Bus struct {
	Server *Server // nil when connected to an external server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Stores *Stores
	// Provisioned says Open provisioned (Config.Verify was nil): the
	// process may create what it needs; otherwise it only checks.
	Provisioned bool
	logger      *slog.Logger
}

// Open starts the embedded server when cfg.URL is empty, connects, and
// provisions streams and stores (idempotently: every process may do it at
// start), or with cfg.Verify only checks that they exist. On error nothing
// is left running.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{logger: logger}
	url := cfg.URL
	if url == "" {
		srv, err := StartEmbedded(cfg.Embedded, logger)
		if err != nil {
			return nil, err
		}
		b.Server = srv
		url = srv.ClientURL()
		logger.Info("embedded nats started", "url", url, "data_dir", cfg.Embedded.DataDir, "sync_always", cfg.Embedded.SyncAlways,
			"users", len(srv.Credentials()))
		// A server that admits its users only: this process is its own.
		if pw, ok := srv.Password(EmbeddedUserName); ok {
			cfg.User, cfg.Password = EmbeddedUserName, pw
		}
	}
	nc, err := Connect(ctx, url, cfg, logger)
	if err != nil {
		b.shutdownServer()
		return nil, err
	}
	b.Conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	var stores *Stores
	if cfg.Verify != nil {
		stores, err = Verify(ctx, js, cfg.Verify)
	} else {
		stores, err = Provision(ctx, js, cfg.Provision)
		b.Provisioned = true
	}
	if err != nil {
		nc.Close()
		b.shutdownServer()
		return nil, err
	}
	b.Stores = stores
	return b, nil
}

func (b *Bus) shutdownServer() {
	if b.Server != nil {
		b.Server.Shutdown()
	}
}

// Close drains the connection (pending publishes are flushed, subscriptions
// finish their delivered messages) within ctx's deadline, then stops the
// embedded server if there is one. Stop consumers before calling it.
func (b *Bus) Close(ctx context.Context) error {
	var err error
	if b.Conn != nil && !b.Conn.IsClosed() {
		closed := make(chan struct{})
		b.Conn.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err = b.Conn.Drain(); err == nil {
			select {
			case <-closed:
			case <-ctx.Done():
				err = fmt.Errorf("drain nats connection: %w", ctx.Err())
				b.Conn.Close()
			}
		} else {
			b.Conn.Close()
		}
	}
	b.shutdownServer()
	return err
}
