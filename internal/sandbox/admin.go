package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// Stats is the answer of GET /_sandbox/stats.
type Stats struct {
	Applications map[string]AppStats `json:"applications"`
	Tenants      []TenantState       `json:"tenants"`
}

// TenantState is one tenant in the admin answers.
type TenantState struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	// Exports started (answered 200) for the tenant.
	Exports int64  `json:"exports"`
	Faults  Faults `json:"faults"`
}

// FaultState is the answer of GET /_sandbox/faults.
type FaultState struct {
	Global  Faults            `json:"global"`
	Tenants map[string]Faults `json:"tenants"`
}

func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sandbox/stats", s.adminStats)
	mux.HandleFunc("GET /_sandbox/stats/{client_id}", s.adminAppStats)
	mux.HandleFunc("GET /_sandbox/tenants", s.adminTenants)
	mux.HandleFunc("GET /_sandbox/tenants/{id}", s.adminTenant)
	mux.HandleFunc("POST /_sandbox/tenants/{id}/advance", s.adminAdvance)
	mux.HandleFunc("GET /_sandbox/faults", s.adminFaults)
	mux.HandleFunc("PUT /_sandbox/faults", s.adminSetFaults)
	mux.HandleFunc("DELETE /_sandbox/faults", s.adminSetFaults)
	mux.HandleFunc("PUT /_sandbox/faults/{id}", s.adminSetFaults)
	mux.HandleFunc("DELETE /_sandbox/faults/{id}", s.adminSetFaults)
	mux.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown admin call; see the package doc or cmd/sandbox --help"})
	})
}

// StatsSnapshot returns what GET /_sandbox/stats answers.
func (s *Server) StatsSnapshot() Stats {
	now := s.now()
	st := Stats{Applications: make(map[string]AppStats, len(s.apps))}
	for id, a := range s.apps {
		st.Applications[id] = a.lim.snapshot(now)
	}
	for _, id := range s.order {
		st.Tenants = append(st.Tenants, s.tenantState(id))
	}
	return st
}

func (s *Server) tenantState(id string) TenantState {
	t := s.tenants[id]
	s.faultMu.Lock()
	f := s.tenantFaults[id]
	s.faultMu.Unlock()
	return TenantState{ID: id, Name: t.cfg.Name, Generation: t.gen.Load(), Exports: t.exports.Load(), Faults: f}
}

func (s *Server) adminStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.StatsSnapshot())
}

func (s *Server) adminAppStats(w http.ResponseWriter, r *http.Request) {
	a, ok := s.apps[r.PathValue("client_id")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown application"})
		return
	}
	writeJSON(w, http.StatusOK, a.lim.snapshot(s.now()))
}

func (s *Server) adminTenants(w http.ResponseWriter, r *http.Request) {
	out := make([]TenantState, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.tenantState(id))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminTenant(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	if _, ok := s.tenants[id]; !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown tenant"})
		return
	}
	writeJSON(w, http.StatusOK, s.tenantState(id))
}

func (s *Server) adminAdvance(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	gen, err := s.Advance(id)
	if errors.Is(err, ErrUnknownTenant) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown tenant"})
		return
	}
	s.log.Info("generation advanced by admin", "tenant", id, "generation", gen)
	writeJSON(w, http.StatusOK, map[string]any{"tenant": id, "generation": gen})
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.FaultSnapshot())
}

// FaultSnapshot returns the faults in force (GET /_sandbox/faults).
func (s *Server) FaultSnapshot() FaultState {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	fs := FaultState{Global: s.globalFaults, Tenants: make(map[string]Faults, len(s.tenantFaults))}
	for id, f := range s.tenantFaults {
		fs.Tenants[id] = f
	}
	return fs
}

// SetFaults replaces the faults of one tenant, or the global ones when
// tenantID is "". A zero Faults clears them. It returns ErrUnknownTenant or
// a validation error.
func (s *Server) SetFaults(tenantID string, f Faults) error {
	id := strings.ToLower(tenantID)
	if id != "" {
		if _, ok := s.tenants[id]; !ok {
			return ErrUnknownTenant
		}
	}
	if err := f.validate("faults"); err != nil {
		return err
	}
	if _, ok := s.tenants[strings.ToLower(f.TokenTenant)]; f.TokenTenant != "" && !ok {
		return fieldErr("faults.token_tenant", "%s is not a tenant of the sandbox", f.TokenTenant)
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	switch {
	case id == "":
		s.globalFaults = f
	case f.IsZero():
		delete(s.tenantFaults, id)
	default:
		s.tenantFaults[id] = f
	}
	return nil
}

// adminSetFaults is PUT (body: a Faults JSON object) or DELETE of
// /_sandbox/faults (global) and /_sandbox/faults/{id} (one tenant).
func (s *Server) adminSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if r.Method == http.MethodPut {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad faults JSON: " + err.Error()})
			return
		}
	}
	id := r.PathValue("id")
	if err := s.SetFaults(id, f); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrUnknownTenant) {
			status = http.StatusNotFound
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	scope := "global"
	if id != "" {
		scope = strings.ToLower(id)
	}
	s.log.Info("faults set by admin", "scope", scope, "cleared", f.IsZero())
	writeJSON(w, http.StatusOK, s.FaultSnapshot())
}
