package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skolebuss/skolebuss/internal/rostergen"
)

// ErrUnknownTenant is returned by Advance for a tenant id not in the config.
var ErrUnknownTenant = errors.New("unknown tenant")

// Server is the sandbox upstream. Build it with New, serve Handler, stop it
// with Close. Safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	signer *signer

	apps    map[string]*application
	tenants map[string]*tenant // by lower-case id
	order   []string           // tenant ids in config order

	faultMu      sync.Mutex
	globalFaults Faults
	tenantFaults map[string]Faults // by lower-case id
	rng          *rand.Rand        // guarded by faultMu

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type application struct {
	cfg    Application
	scopes map[string]bool
	linked map[string]bool // lower-case tenant ids
	lim    *limiter
}

type tenant struct {
	cfg     Tenant
	muni    *rostergen.Municipality
	gen     atomic.Uint64
	exports atomic.Int64
}

// New builds a server from cfg (defaults applied, then validated) and
// generates its municipalities' definitions. When cfg.GenerationInterval is
// set, a ticker advances every tenant until Close. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sg, err := newSigner(cfg.SigningKeyFile)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.QuotaTimezone)
	if err != nil {
		return nil, fmt.Errorf("sandbox config: quota_timezone: %w", err)
	}
	s := &Server{
		cfg:          cfg,
		log:          logger,
		now:          cfg.Now,
		signer:       sg,
		apps:         make(map[string]*application),
		tenants:      make(map[string]*tenant),
		globalFaults: cfg.Faults,
		tenantFaults: make(map[string]Faults),
		rng:          rand.New(rand.NewPCG(cfg.FaultSeed, 0x5ca1ab1e)),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, t := range cfg.Tenants {
		sizes, err := t.sizes()
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		m, err := rostergen.New(rostergen.Spec{TenantID: strings.ToLower(t.ID), Name: t.Name, Seed: t.seed(), Sizes: sizes, Churn: t.Churn})
		if err != nil {
			return nil, fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		id := strings.ToLower(t.ID)
		s.tenants[id] = &tenant{cfg: t, muni: m}
		s.order = append(s.order, id)
		if !t.Faults.IsZero() {
			s.tenantFaults[id] = t.Faults
		}
	}
	for _, a := range cfg.Applications {
		app := &application{cfg: a, scopes: map[string]bool{}, linked: map[string]bool{}, lim: newLimiter(a.RateLimit, a.Quota, loc)}
		for _, sc := range a.Scopes {
			app.scopes[sc] = true
		}
		for _, t := range a.Tenants {
			app.linked[strings.ToLower(t)] = true
		}
		s.apps[a.ClientID] = app
	}
	if iv := cfg.GenerationInterval.D(); iv > 0 {
		go s.tick(iv)
	} else {
		close(s.done)
	}
	return s, nil
}

// tick advances every tenant each interval until Close.
func (s *Server) tick(iv time.Duration) {
	defer close(s.done)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for _, id := range s.order {
				gen, _ := s.Advance(id)
				s.log.Info("generation advanced", "tenant", id, "generation", gen)
			}
		}
	}
}

// Close stops the generation ticker and waits for it. It does not stop
// requests in flight (the http.Server that serves Handler does).
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Advance moves a tenant to its next generation and returns it. Exports
// started before keep the generation they started with.
func (s *Server) Advance(tenantID string) (uint64, error) {
	t, ok := s.tenants[strings.ToLower(tenantID)]
	if !ok {
		return 0, fmt.Errorf("advance %q: %w", tenantID, ErrUnknownTenant)
	}
	return t.gen.Add(1), nil
}

// Generation returns a tenant's current generation (0 at start).
func (s *Server) Generation(tenantID string) (uint64, error) {
	t, ok := s.tenants[strings.ToLower(tenantID)]
	if !ok {
		return 0, fmt.Errorf("generation %q: %w", tenantID, ErrUnknownTenant)
	}
	return t.gen.Load(), nil
}

// Paths of the upstream API and of the sandbox's own admin calls.
const (
	PathToken     = "/connect/token"
	PathExport    = "/api/external/lms/pifu"
	PathJWKS      = "/.well-known/jwks.json"
	PathDiscovery = "/.well-known/openid-configuration"
	PathAdmin     = "/_sandbox/"
)

// Handler serves the upstream paths and the admin calls under /_sandbox/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathToken, s.handleToken)
	mux.HandleFunc(PathToken, methodNotAllowed("POST"))
	mux.HandleFunc("GET "+PathExport, s.handleExport)
	mux.HandleFunc(PathExport, methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET "+PathJWKS, s.handleJWKS)
	mux.HandleFunc("GET "+PathDiscovery, s.handleDiscovery)
	s.adminRoutes(mux)
	return s.headers(mux)
}

// headers adds the API version to every answer, and Deprecation and Sunset
// when configured.
func (s *Server) headers(next http.Handler) http.Handler {
	var dep, sun string
	if s.cfg.Deprecation != nil {
		dep = fmt.Sprintf("@%d", s.cfg.Deprecation.Unix())
	}
	if s.cfg.Sunset != nil {
		sun = s.cfg.Sunset.UTC().Format(http.TimeFormat)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Api-Version", s.cfg.APIVersion)
		if dep != "" {
			h.Set("Deprecation", dep)
		}
		if sun != "" {
			h.Set("Sunset", sun)
		}
		next.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.signer.jwks())
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.cfg.Issuer,
		"token_endpoint":                        base + PathToken,
		"jwks_uri":                              base + PathJWKS,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"id_token_signing_alg_values_supported": []string{s.signer.method.Alg()},
		"scopes_supported":                      s.allScopes(),
	})
}

func (s *Server) allScopes() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range s.cfg.Applications {
		for _, sc := range a.Scopes {
			if !seen[sc] {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	return out
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// faultsFor returns the faults in force for a tenant: its own over the
// global ones.
func (s *Server) faultsFor(tenantID string) Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.tenantFaults[strings.ToLower(tenantID)].over(s.globalFaults)
}

// roll draws from the seeded fault source: true with probability p.
func (s *Server) roll(p float64) (bool, int) {
	if p <= 0 {
		return false, 0
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.rng.Float64() < p, s.rng.IntN(1 << 30)
}
