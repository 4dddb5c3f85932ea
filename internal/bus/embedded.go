// Package bus is skolebuss's access to NATS JetStream: an embedded
// nats-server for the demo, the tests and single-machine runs; a connection
// to it or to any external server or cluster; the provisioning of the
// streams, object stores and key-value buckets the stages share; and the raw
// publish measurement the pipeline benchmark compares with.
package bus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/auth"
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
	// Users, when not empty, are the only clients the server admits besides
	// its own user (EmbeddedUserName): each by its name and password, with
	// its permissions. Empty: the server admits every client with every
	// right, as it always did.
	Users []EmbeddedUser
	// CredentialsDir is where a server with Users writes the passwords it
	// made: its own user's (EmbeddedPasswordFile), which the processes
	// joining it read (ReadEmbeddedPassword), and those of users whose
	// variable is not set. Created 0700, each file 0600, the files removed
	// at Shutdown. Default: EmbeddedCredentialsDir(Host, Port).
	CredentialsDir string
	// Getenv reads a user's PasswordEnv. Default os.Getenv.
	Getenv func(string) string
}

// EmbeddedUser is a user the embedded server admits.
type EmbeddedUser struct {
	Name string
	// PasswordEnv names the variable holding the user's password. When it
	// is not set (or empty), the server makes a password at random at each
	// start and writes it to <CredentialsDir>/<Name>.password.
	PasswordEnv string
	// Permissions nil gives the user every right.
	Permissions *server.Permissions
}

// EmbeddedUserName is the user of the embedded server's own process and of
// the pipeline's processes that join it: every right. Its password is made
// at random at each start, never printed, and written only to
// EmbeddedPasswordFile in the credentials directory.
const EmbeddedUserName = "skolebuss"

// EmbeddedPasswordFile is the file, in a server's credentials directory,
// holding EmbeddedUserName's password while the server runs.
const EmbeddedPasswordFile = EmbeddedUserName + ".password"

// EmbeddedCredentialsDir is the default credentials directory of an
// embedded server listening on host and port: a directory of this OS user's
// own, <user cache dir>/skolebuss/nats-<host>-<port> ($XDG_CACHE_HOME or
// ~/.cache on Linux), so that only processes of the same user on this
// machine read its passwords.
func EmbeddedCredentialsDir(host string, port int) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("embedded nats: no directory for its credentials: %w", err)
	}
	return filepath.Join(base, "skolebuss", "nats-"+host+"-"+strconv.Itoa(port)), nil
}

// ReadEmbeddedPassword reads EmbeddedUserName's password from the
// credentials directory dir of a running embedded server.
func ReadEmbeddedPassword(dir string) (auth.Secret, error) {
	b, err := os.ReadFile(filepath.Join(dir, EmbeddedPasswordFile))
	if err != nil {
		return "", err
	}
	return auth.Secret(strings.TrimSpace(string(b))), nil
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
	seen := map[string]bool{EmbeddedUserName: true}
	for _, u := range c.Users {
		if u.Name == "" || seen[u.Name] {
			return fmt.Errorf("embedded nats: user %q is empty, given twice or the server's own", u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

// Server is a running embedded nats-server with JetStream on file storage.
// Shutdown stops it; it is safe for concurrent use.
type Server struct {
	ns *server.Server
	// passwords of the users, EmbeddedUserName's among them; nil when the
	// server admits every client.
	passwords map[string]auth.Secret
	// credentials are where a user's password is, for Credentials.
	credentials []Credential
	files       []string // written at start, removed at Shutdown
}

// Credential says where the password of one of the server's users is.
type Credential struct {
	User string
	// Env is the variable the password came from, or File the file the
	// server wrote a password it made into. One of them is set.
	Env, File string
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
	srv := &Server{}
	if len(cfg.Users) > 0 {
		if err := srv.users(cfg, opts); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.ns = ns
	ns.SetLoggerV2(slogAdapter{logger.With("component", "nats-server")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats on %s: not ready within %s", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.ReadyTimeout)
	}
	if !ns.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: JetStream did not start (data dir %s)", cfg.DataDir)
	}
	if len(cfg.Users) > 0 {
		if err := srv.writePasswords(cfg); err != nil {
			srv.Shutdown()
			return nil, err
		}
	}
	return srv, nil
}

// users sets the server's users in opts, in the global account, with
// EmbeddedUserName first, making the passwords that no variable gives.
func (s *Server) users(cfg EmbeddedConfig, opts *server.Options) error {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s.passwords = map[string]auth.Secret{}
	users := append([]EmbeddedUser{{Name: EmbeddedUserName}}, cfg.Users...)
	for _, u := range users {
		c := Credential{User: u.Name}
		pw := ""
		if u.PasswordEnv != "" {
			pw = getenv(u.PasswordEnv)
			c.Env = u.PasswordEnv
		}
		if pw == "" {
			made, err := randomPassword()
			if err != nil {
				return err
			}
			pw, c.Env = made, ""
		}
		s.passwords[u.Name] = auth.Secret(pw)
		s.credentials = append(s.credentials, c)
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: pw, Permissions: u.Permissions})
	}
	return nil
}

// writePasswords writes the passwords the server made into its credentials
// directory: cfg's, or the default one of the port it listens on.
func (s *Server) writePasswords(cfg EmbeddedConfig) error {
	dir := cfg.CredentialsDir
	if dir == "" {
		port := cfg.Port
		if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
			port = a.Port
		}
		var err error
		if dir, err = EmbeddedCredentialsDir(cfg.Host, port); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("embedded nats: credentials directory: %w", err)
	}
	for i, c := range s.credentials {
		if c.Env != "" {
			continue
		}
		c.File = filepath.Join(dir, c.User+".password")
		if err := writePrivate(c.File, s.passwords[c.User].Reveal()); err != nil {
			return err
		}
		s.files = append(s.files, c.File)
		s.credentials[i] = c
	}
	return nil
}

// randomPassword is 32 random bytes, hex.
func randomPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("embedded nats: a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// writePrivate writes s to path, readable by this OS user only, replacing
// what was there (a file left by a server that was killed).
func writePrivate(path, s string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".password-*")
	if err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("embedded nats: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("embedded nats: %w", err)
	}
	return nil
}

func (s *Server) removeFiles() {
	for _, f := range s.files {
		_ = os.Remove(f)
	}
	s.files = nil
}

// Password is the password of the server's user name, for a connection
// made in this process; false when the server has no such user (or admits
// every client).
func (s *Server) Password(name string) (auth.Secret, bool) {
	pw, ok := s.passwords[name]
	return pw, ok
}

// Credentials says, for each user of the server (EmbeddedUserName first),
// where its password is; nil when the server admits every client.
func (s *Server) Credentials() []Credential { return s.credentials }

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Shutdown stops the server and waits until it has stopped: streams are
// flushed and file stores closed. Close client connections first for a
// clean drain.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.removeFiles()
}

// slogAdapter routes nats-server's log to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any) {
	// The users' passwords are given to the server in this process, not
	// written in a configuration file: the advice to hash them is noise.
	if strings.HasPrefix(format, "Plaintext passwords detected") {
		a.l.Debug(fmt.Sprintf(format, v...))
		return
	}
	a.l.Warn(fmt.Sprintf(format, v...))
}
func (a slogAdapter) Fatalf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any) { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
