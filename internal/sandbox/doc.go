// Package sandbox is the simulated upstream of skolebuss: the Visma Connect
// token endpoint and the Flyt Skole LMS export, serving generated
// municipalities (internal/rostergen) that change from one generation to the
// next. It refuses and fails the way the real upstream does, so that the
// pipeline is tested against something no kinder than production.
//
// # Upstream paths
//
//	POST /connect/token                  client credentials grant (form body):
//	                                     grant_type=client_credentials, client_id, client_secret
//	                                     (or HTTP Basic), scope (optional: all of the application's
//	                                     scopes), tenant_ID (tenant_id accepted).
//	                                     200 {"access_token","token_type":"Bearer","expires_in","scope"}
//	                                     400 invalid_request (missing or repeated parameter),
//	                                         unsupported_grant_type, invalid_scope,
//	                                         invalid_tenant (tenant unknown or not linked)
//	                                     401 invalid_client (wrong id or secret)
//	                                     503 temporarily_unavailable (fault token_endpoint_down)
//	GET  /api/external/lms/pifu          the token's tenant's PIFU-IMS 1.3 full export, streamed
//	                                     (chunked) as application/xml; charset=utf-8.
//	                                     401 + WWW-Authenticate: Bearer error="invalid_token" for a
//	                                     missing, expired, badly signed or foreign token or a tenant
//	                                     no longer linked; 403 insufficient_scope without
//	                                     vfsapi:lmsexport; 429 + Retry-After (seconds) for the rate
//	                                     limit and the daily and monthly quotas.
//	GET  /.well-known/jwks.json          the token signing key (ES256 by default, kid = RFC 7638
//	                                     thumbprint)
//	GET  /.well-known/openid-configuration
//
// Every answer carries X-Api-Version; Deprecation (RFC 9745) and Sunset (RFC
// 8594) when configured. Exports carry X-Sandbox-Generation, the generation
// they were made from.
//
// Access tokens are JWTs with iss, aud, client_id, scope (a list, as Visma
// Connect sends it), tenant_id, nbf, iat, exp and jti.
//
// # Limits
//
// Each application has a token bucket (rate per second, burst) and daily and
// monthly quotas of export requests, reset at midnight and on the first of
// the month in quota_timezone. Only export requests with a valid token count.
// A request refused with 429 uses neither a token nor quota; an admitted
// request uses quota even when a fault then spoils its answer (as a real
// upstream would count it).
//
// # Faults
//
// Faults come from the config file (global and per tenant) and can be set at
// run time through the admin calls. A tenant's own faults win over the global
// ones field by field. The share of failing answers (error_rate) is drawn
// from a random source seeded by fault_seed, so a run is reproducible.
//
//	error_rate, error_statuses  a share of export answers with 500/502/503 (503 with Retry-After)
//	retry_after                 Retry-After of 503 answers (default 1s)
//	retry_after_date            Retry-After as an HTTP date instead of seconds
//	latency                     added before the export answer
//	slow_body                   export body at this many bytes per second
//	cut_off_after               close the connection after N body bytes, without the final chunk
//	malformed_after             corrupt the XML after N body bytes
//	content_type                a wrong Content-Type on the export
//	token_endpoint_down         the token endpoint answers 503 temporarily_unavailable
//	token_lifetime              tokens expire after this, while expires_in announces the normal lifetime
//	token_tenant                tokens name this tenant in their tenant_id claim, not the one asked for
//	                            (a token endpoint answering for another municipality)
//	token_error                 the token endpoint refuses with 400 and this OAuth error code
//
// # Admin calls
//
// The sandbox's own calls live apart from the upstream's paths, under
// /_sandbox/, and answer JSON. They have no authentication: bind the sandbox
// to a loopback address.
//
//	GET    /_sandbox/stats               per application: requests, served, throttled (429s),
//	                                     rate_limited, quota_exceeded, faulted, tokens_issued,
//	                                     daily/monthly quota used and limits; per tenant: generation,
//	                                     exports, faults
//	GET    /_sandbox/stats/{client_id}   one application's stats
//	GET    /_sandbox/tenants             every tenant's id, name, generation, exports and faults
//	GET    /_sandbox/tenants/{id}        one tenant
//	POST   /_sandbox/tenants/{id}/advance  move the tenant to its next generation
//	GET    /_sandbox/faults              the global and per-tenant faults in force
//	PUT    /_sandbox/faults              set the global faults (body: a faults JSON object,
//	                                     durations as strings: {"error_rate":0.5,"latency":"200ms"})
//	DELETE /_sandbox/faults              clear the global faults
//	PUT    /_sandbox/faults/{id}         set one tenant's faults
//	DELETE /_sandbox/faults/{id}         clear one tenant's faults
//
// # Config
//
// One YAML file (see deploy/sandbox.example.yaml), read by LoadConfig
// strictly: unknown fields and bad values are refused with the file, the
// line and the field. Without a file, DemoConfig is served.
package sandbox
