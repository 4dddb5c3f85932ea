package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// oauthError is an RFC 6749 section 5.2 error answer.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e oauthError) write(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// tokenResponse is the success answer of the token endpoint.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// handleToken is POST /connect/token: the client credentials grant with a
// tenant_ID parameter, client authentication in the form or by HTTP Basic.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	form, oerr := parseTokenForm(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	tenantID := form.get("tenant_ID")
	if f := s.faultsFor(tenantID); f.TokenEndpointDown {
		f.setRetryAfter(w, s.now(), f.RetryAfter.D())
		oauthError{http.StatusServiceUnavailable, "temporarily_unavailable", "the token endpoint is down (sandbox fault)"}.write(w)
		return
	}
	if f := s.faultsFor(tenantID); f.TokenError != "" {
		oauthError{http.StatusBadRequest, f.TokenError, "refused with a made-up error code (sandbox fault)"}.write(w)
		return
	}

	// Client authentication: HTTP Basic or client_id/client_secret in the
	// form, not both (RFC 6749 section 2.3.1).
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.has("client_secret") {
			oauthError{http.StatusBadRequest, "invalid_request", "use one client authentication method, not HTTP Basic and form parameters"}.write(w)
			return
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			oauthError{http.StatusBadRequest, "invalid_request", "malformed HTTP Basic credentials"}.write(w)
			return
		}
	} else {
		for _, p := range []string{"client_id", "client_secret"} {
			if !form.has(p) || form.get(p) == "" {
				oauthError{http.StatusBadRequest, "invalid_request", "missing parameter " + p}.write(w)
				return
			}
		}
		id, secret = form.get("client_id"), form.get("client_secret")
	}
	if form.get("grant_type") != "client_credentials" {
		oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"}.write(w)
		return
	}
	app, ok := s.apps[id]
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(app.cfg.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="sandbox"`)
		}
		oauthError{http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret"}.write(w)
		s.log.Info("token refused", "reason", "invalid_client")
		return
	}

	scopes := app.cfg.Scopes
	if form.has("scope") {
		scopes = strings.Fields(form.get("scope"))
		if len(scopes) == 0 {
			oauthError{http.StatusBadRequest, "invalid_scope", "empty scope"}.write(w)
			return
		}
		for _, sc := range scopes {
			if !app.scopes[sc] {
				oauthError{http.StatusBadRequest, "invalid_scope", "the application is not granted the scope " + strconv.Quote(sc)}.write(w)
				s.log.Info("token refused", "client_id", id, "reason", "invalid_scope")
				return
			}
		}
	}
	if !form.has("tenant_ID") || tenantID == "" {
		oauthError{http.StatusBadRequest, "invalid_request", "missing parameter tenant_ID"}.write(w)
		return
	}
	if _, ok := s.tenants[strings.ToLower(tenantID)]; !ok || !app.linked[strings.ToLower(tenantID)] {
		oauthError{http.StatusBadRequest, "invalid_tenant", "the tenant is not linked to the application"}.write(w)
		s.log.Info("token refused", "client_id", id, "reason", "invalid_tenant")
		return
	}

	now := s.now()
	lifetime := s.cfg.TokenLifetime.D()
	exp := now.Add(lifetime)
	if f := s.faultsFor(tenantID); f.TokenLifetime > 0 {
		exp = now.Add(f.TokenLifetime.D()) // expires early; expires_in still says lifetime
	}
	issuedFor := strings.ToLower(tenantID)
	if f := s.faultsFor(tenantID); f.TokenTenant != "" {
		issuedFor = strings.ToLower(f.TokenTenant) // answers for another tenant
	}
	claims := &Claims{
		ClientID: id,
		Scope:    scopes,
		TenantID: issuedFor,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        newJTI(),
		},
	}
	tok, err := s.signer.sign(claims)
	if err != nil {
		s.log.Error("sign token", "err", err)
		oauthError{http.StatusInternalServerError, "server_error", "could not sign the token"}.write(w)
		return
	}
	app.lim.count(func(st *AppStats) { st.TokensIssued++ })
	s.log.Info("token issued", "client_id", id, "tenant", claims.TenantID, "expires_in", int64(lifetime/time.Second))
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(lifetime / time.Second), Scope: strings.Join(scopes, " ")})
}

func newJTI() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokenForm is the parsed body, with tenant_id folded into tenant_ID.
type tokenForm url.Values

func (f tokenForm) has(k string) bool   { _, ok := f[k]; return ok }
func (f tokenForm) get(k string) string { return url.Values(f).Get(k) }

// parseTokenForm reads the form body; a missing grant_type, a repeated
// parameter or a body that is not a form is invalid_request.
func parseTokenForm(r *http.Request) (tokenForm, *oauthError) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "the body is not a valid form"}
	}
	f := tokenForm(r.PostForm)
	for k, v := range f {
		if len(v) > 1 {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "repeated parameter " + k}
		}
	}
	if f.has("tenant_id") {
		if f.has("tenant_ID") {
			return nil, &oauthError{http.StatusBadRequest, "invalid_request", "repeated parameter tenant_ID (given as tenant_ID and tenant_id)"}
		}
		f["tenant_ID"] = f["tenant_id"]
	}
	if !f.has("grant_type") || f.get("grant_type") == "" {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "missing parameter grant_type"}
	}
	return f, nil
}
