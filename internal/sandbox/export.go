package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ExportContentType is the Content-Type of the PIFU export.
const ExportContentType = "application/xml; charset=utf-8"

// HeaderGeneration carries the generation an export was made from. It is
// the sandbox's own header, not the upstream's.
const HeaderGeneration = "X-Sandbox-Generation"

// bearerError answers 401 or 403 with an RFC 6750 challenge.
func bearerError(w http.ResponseWriter, status int, code, desc string) {
	ch := fmt.Sprintf(`Bearer realm="sandbox", error=%q, error_description=%q`, code, desc)
	if code == "insufficient_scope" {
		ch += fmt.Sprintf(`, scope=%q`, ScopeLMSExport)
	}
	w.Header().Set("WWW-Authenticate", ch)
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// handleExport is GET /api/external/lms/pifu: the full PIFU export of the
// token's tenant at its current generation, streamed as it is generated.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearerToken(r)
	if !ok {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "missing bearer token")
		return
	}
	claims, err := s.signer.verify(raw, s.cfg.Issuer, s.now())
	if err != nil {
		bearerError(w, http.StatusUnauthorized, "invalid_token", tokenProblem(err))
		s.log.Info("export refused", "reason", "invalid_token", "problem", tokenProblem(err))
		return
	}
	app, ok := s.apps[claims.ClientID]
	if !ok {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "unknown client")
		return
	}
	t, ok := s.tenants[strings.ToLower(claims.TenantID)]
	if !ok || !app.linked[strings.ToLower(claims.TenantID)] {
		bearerError(w, http.StatusUnauthorized, "invalid_token", "the token's tenant is not linked to the application")
		s.log.Info("export refused", "client_id", claims.ClientID, "reason", "tenant_not_linked")
		return
	}
	if !claims.HasScope(ScopeLMSExport) {
		bearerError(w, http.StatusForbidden, "insufficient_scope", "the token lacks the scope "+ScopeLMSExport)
		s.log.Info("export refused", "client_id", claims.ClientID, "reason", "insufficient_scope")
		return
	}
	if wait, why := app.lim.admit(s.now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": why, "error_description": "too many requests: " + strings.ReplaceAll(why, "_", " ")})
		s.log.Info("export throttled", "client_id", claims.ClientID, "tenant", claims.TenantID, "reason", why, "retry_after", wait.Round(time.Second))
		return
	}

	f := s.faultsFor(t.cfg.ID)
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency.D()):
		case <-r.Context().Done():
			return
		}
	}
	if hit, n := s.roll(f.ErrorRate); hit {
		statuses := f.ErrorStatuses
		if len(statuses) == 0 {
			statuses = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}
		}
		st := statuses[n%len(statuses)]
		if st == http.StatusServiceUnavailable {
			f.setRetryAfter(w, s.now(), f.RetryAfter.D())
		}
		app.lim.count(func(a *AppStats) { a.Faulted++ })
		writeJSON(w, st, map[string]string{"error": "server_error", "error_description": "injected fault: " + http.StatusText(st)})
		s.log.Info("export fault", "client_id", claims.ClientID, "tenant", claims.TenantID, "status", st)
		return
	}

	gen := t.gen.Load()
	ct := ExportContentType
	spoiled := f.CutOffAfter > 0 || f.MalformedAfter > 0
	if f.ContentType != "" {
		ct, spoiled = f.ContentType, true
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set(HeaderGeneration, strconv.FormatUint(gen, 10))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	app.lim.count(func(a *AppStats) {
		a.Served++
		if spoiled {
			a.Faulted++
		}
	})
	t.exports.Add(1)
	if r.Method == http.MethodHead {
		return
	}

	start := time.Now()
	body := faultyBody(w, r.Context(), f)
	bw := bufio.NewWriterSize(body, 64<<10)
	n, err := t.muni.WriteExport(r.Context(), bw, gen)
	if err == nil {
		err = bw.Flush()
	}
	if errors.Is(err, errCutOff) {
		s.log.Info("export cut off", "client_id", claims.ClientID, "tenant", claims.TenantID, "after_bytes", f.CutOffAfter)
		// Close the connection without the terminating chunk: the client
		// sees an unexpected EOF.
		panic(http.ErrAbortHandler)
	}
	if err != nil {
		s.log.Info("export aborted", "client_id", claims.ClientID, "tenant", claims.TenantID, "generation", gen, "bytes", n, "err", err)
		return
	}
	s.log.Info("export served", "client_id", claims.ClientID, "tenant", claims.TenantID, "generation", gen,
		"bytes", n, "duration", time.Since(start).Round(time.Millisecond))
}

// bearerToken extracts the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// tokenProblem says what is wrong with a token without echoing it.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, errForeignKey):
		return "the token is not signed by this issuer's key"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token is expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token is from another issuer"
	}
	return "the token is malformed or invalid"
}
