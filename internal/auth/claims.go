package auth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/skolebuss/skolebuss/internal/failure"
)

// checkTenantClaim refuses an access token issued for another tenant than
// key's. A token that is a JWT (three base64url parts, the middle one a JSON
// object) with a tenant claim (a claim named tenant_id in any case, such as
// the tenant_ID the token request carries) must name key's tenant (compared
// without regard to case, as tenant ids are UUIDs); anything else is an
// opaque token, accepted as it is: only the API can judge it.
//
// The signature is not checked: the token comes straight from the token
// endpoint over the connection its URL names, and the API checks it. The
// claim is read to catch a token endpoint that answers for another tenant,
// whose token the API would accept, and whose export would then be published
// as this tenant's. The error names the two tenants, never the token.
func checkTenantClaim(access string, key Key) error {
	claim, ok := tenantClaim(access)
	if !ok {
		return nil
	}
	tenant, isString := claim.(string)
	switch {
	case !isString:
		return failure.Permanentf(failure.ReasonTokenWrongTenant,
			"token for %s: the token's tenant claim is not a string but %s", key, clip(fmt.Sprintf("%T", claim), 20))
	case !strings.EqualFold(tenant, key.Tenant):
		return failure.Permanentf(failure.ReasonTokenWrongTenant,
			"token for %s: the token endpoint issued a token for tenant %q; no export was requested with it", key, clip(oneLine(tenant), 64))
	}
	return nil
}

// tenantClaim is the tenant claim of a JWT-shaped token, if it has one.
func tenantClaim(access string) (any, bool) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, false
	}
	for name, v := range claims {
		if strings.EqualFold(name, "tenant_id") {
			return v, true
		}
	}
	return nil, false
}

// oneLine replaces control characters, so an upstream's text stays one line
// in a log or a dead letter.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
