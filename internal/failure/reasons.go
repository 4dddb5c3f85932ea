package failure

import (
	"slices"
	"strconv"
	"strings"
)

// Reason is the short machine-readable code of a classified error. Its value
// is part of the wire contract: it is the reason of a dead letter
// (messages.DeadLetter.Reason), the reason label of the stages' metrics and
// an attribute of the failed span, so a value never changes once released.
//
// The reasons are one set, declared here with the class errors of each have
// and the sentence an operator reads (Lookup). The set lives in failure
// rather than in internal/messages with the rest of the contract because an
// Error carries its Reason and messages imports failure (its codec classifies
// a message it cannot read as Permanent): a Reason type in messages would be
// an import cycle. Every package that classifies an error already imports
// failure.
//
// A new reason is a constant below and a row in the table of reasons.go; the
// test TestEveryReasonIsInTheSet refuses a reason given as a string literal
// anywhere in the module and a constant without a row.
type Reason string

func (r Reason) String() string { return string(r) }

// Reasons of any stage.
const (
	// ReasonCanceled: the work was cancelled (context.Canceled).
	ReasonCanceled Reason = "canceled"
	// ReasonTimeout: a deadline passed (context.DeadlineExceeded, a
	// request to the export API that timed out).
	ReasonTimeout Reason = "timeout"
	// ReasonUnclassified is the reason of an error nobody classified.
	ReasonUnclassified Reason = "unclassified"
	// ReasonPanic: a handler panicked.
	ReasonPanic Reason = "panic"
	// ReasonTenantMismatch: a message's tenant differs from its subject's.
	ReasonTenantMismatch Reason = "tenant_mismatch"
	// ReasonUnknownApplication: a job or token request names an
	// application the configuration does not list.
	ReasonUnknownApplication Reason = "unknown_application"
)

// Reasons of the export API (internal/flytapi). An answer with a status of
// its own reason is ReasonHTTP(status).
const (
	ReasonUnauthorized     Reason = "unauthorized"
	ReasonForbidden        Reason = "forbidden"
	ReasonNotFound         Reason = "not_found"
	ReasonWrongContentType Reason = "wrong_content_type"
	ReasonTruncatedBody    Reason = "truncated_body"
	ReasonConnectionReset  Reason = "connection_reset"
	ReasonBodyStalled      Reason = "body_stalled"
	ReasonUnreachable      Reason = "unreachable"
	ReasonBodyReadFailed   Reason = "body_read_failed"
	ReasonRequestFailed    Reason = "request_failed"
	ReasonBadConfig        Reason = "bad_config"
	// ReasonHTTP429 is ReasonHTTP(429): the export API's Too Many Requests.
	ReasonHTTP429 Reason = "http_429"
	// ReasonHTTP503 is ReasonHTTP(503): the export API's Service
	// Unavailable, Throttled with a Retry-After, Transient without.
	ReasonHTTP503 Reason = "http_503"
)

// Reasons of the token endpoint (internal/auth). An answer without an OAuth
// error code is ReasonTokenHTTP(status); one with a code is ReasonOAuth(code).
const (
	ReasonTokenTimeout         Reason = "token_timeout"
	ReasonTokenConnectionReset Reason = "token_connection_reset"
	ReasonTokenUnreachable     Reason = "token_unreachable"
	ReasonTokenRequestFailed   Reason = "token_request_failed"
	ReasonTokenBadResponse     Reason = "token_bad_response"
	// ReasonClosed: the token source was closed while a token was asked for.
	ReasonClosed Reason = "closed"

	// The RFC 6749 error codes (and the upstream's invalid_tenant) the
	// token endpoint answers with; their values are the codes.
	ReasonInvalidClient          Reason = "invalid_client"
	ReasonInvalidScope           Reason = "invalid_scope"
	ReasonInvalidTenant          Reason = "invalid_tenant"
	ReasonUnauthorizedClient     Reason = "unauthorized_client"
	ReasonInvalidRequest         Reason = "invalid_request"
	ReasonInvalidGrant           Reason = "invalid_grant"
	ReasonUnsupportedGrantType   Reason = "unsupported_grant_type"
	ReasonAccessDenied           Reason = "access_denied"
	ReasonServerError            Reason = "server_error"
	ReasonTemporarilyUnavailable Reason = "temporarily_unavailable"
	// ReasonOAuthError stands for an error code that is not a plain word.
	ReasonOAuthError Reason = "oauth_error"
	// ReasonTokenWrongTenant: the token endpoint issued a token whose
	// tenant claim names another tenant than the one asked for.
	ReasonTokenWrongTenant Reason = "token_wrong_tenant"
)

// Reasons of the fetcher and its limits (internal/fetcher, internal/quota).
const (
	ReasonStoreMismatch    Reason = "store_mismatch"
	ReasonPublish          Reason = "publish"
	ReasonObjectStore      Reason = "object_store"
	ReasonBreakerOpen      Reason = "breaker_open"
	ReasonTokenBreakerOpen Reason = "token_breaker_open"
	// ReasonExportDeadline: the whole export (token, answer and body) took
	// longer than the tenant's export deadline.
	ReasonExportDeadline Reason = "export_deadline"
	// ReasonExportTooLarge: the export is larger than the tenant's maximum
	// export size.
	ReasonExportTooLarge Reason = "export_too_large"

	ReasonBadApplication   Reason = "bad_application"
	ReasonQuotaStore       Reason = "quota_store"
	ReasonQuotaContention  Reason = "quota_contention"
	ReasonUpstreamBackoff  Reason = "upstream_backoff"
	ReasonDailyQuotaUsed   Reason = "daily_quota_used"
	ReasonMonthlyQuotaUsed Reason = "monthly_quota_used"
	ReasonRateLimit        Reason = "rate_limit"
)

// Reasons of the publisher and the diff (internal/publisher, internal/diff).
const (
	ReasonSnapshotCorrupt        Reason = "snapshot_corrupt"
	ReasonSnapshotMismatch       Reason = "snapshot_mismatch"
	ReasonExportMissing          Reason = "export_missing"
	ReasonExportMismatch         Reason = "export_mismatch"
	ReasonPreviousExportMissing  Reason = "previous_export_missing"
	ReasonPreviousExportMismatch Reason = "previous_export_mismatch"
	ReasonInvalidSubject         Reason = "invalid_subject"
	ReasonInvalidDocument        Reason = "invalid_document"
	ReasonInvalidEvent           Reason = "invalid_event"
	ReasonDeletionHeld           Reason = "deletion_held"
	ReasonSpoolIO                Reason = "spool_io"
	ReasonPublishFailed          Reason = "publish_failed"
	ReasonPublishAckTimeout      Reason = "publish_ack_timeout"
	ReasonPublishIncomplete      Reason = "publish_incomplete"
	ReasonStreamRead             Reason = "stream_read"
	ReasonRedoMismatch           Reason = "redo_mismatch"
)

// Reasons of the message codec (internal/messages).
const (
	ReasonEmptyMessage          Reason = "empty_message"
	ReasonUnknownMessageType    Reason = "unknown_message_type"
	ReasonUnknownMessageVersion Reason = "unknown_message_version"
	ReasonUnexpectedMessageType Reason = "unexpected_message_type"
	ReasonUndecodableMessage    Reason = "undecodable_message"
	ReasonInvalidMessage        Reason = "invalid_message"
)

// ReasonInfo is what the set says about one reason.
type ReasonInfo struct {
	// Class is the class errors of the reason have. The one exception is a
	// 503 (ReasonHTTP503, ReasonTokenHTTP(503)): Throttled when it carried
	// a Retry-After, Transient when not.
	Class Class
	// Sentence says what happened and what comes of it, for an operator.
	Sentence string
}

// reasons is the set: every constant above, with its class and sentence.
var reasons = map[Reason]ReasonInfo{
	ReasonCanceled:           {Canceled, "The work was cancelled (the process is stopping or the caller gave up); the message is handed back, not counted as a failure."},
	ReasonTimeout:            {Transient, "A request to the export API, or another step with a deadline, did not finish in time; retried with backoff."},
	ReasonUnclassified:       {Transient, "An error no part of skolebuss classified; retried with backoff until the attempts run out. The error text says what happened; a recurring one is a bug to report."},
	ReasonPanic:              {Transient, "The stage's handler panicked; retried with backoff until the attempts run out. The log has the stack; a recurring one is a bug to report."},
	ReasonTenantMismatch:     {Permanent, "The message names another tenant than its subject does; it is never retried."},
	ReasonUnknownApplication: {Permanent, "The job names an application the configuration does not list; add it, or replay once the tenant's application is right."},

	ReasonUnauthorized:     {Permanent, "The export API rejected a freshly issued token twice (401): the application is not allowed to read this tenant's export."},
	ReasonForbidden:        {Permanent, "The export API refused access (403): the application is not linked to the tenant or lacks the scope."},
	ReasonNotFound:         {Permanent, "The export API knows no export for this tenant (404)."},
	ReasonWrongContentType: {Permanent, "The export API answered with something other than XML, often an error page of a proxy."},
	ReasonTruncatedBody:    {Transient, "The export ended before the document was complete (a body cut short); retried with backoff."},
	ReasonConnectionReset:  {Transient, "The connection to the export API was reset; retried with backoff."},
	ReasonBodyStalled:      {Transient, "The export stopped arriving for longer than the idle limit; retried with backoff."},
	ReasonUnreachable:      {Transient, "The export API could not be reached (connection refused or the name does not resolve); retried with backoff."},
	ReasonBodyReadFailed:   {Transient, "Reading the export failed in a way not named otherwise; retried with backoff."},
	ReasonRequestFailed:    {Transient, "The request to the export API failed in a way not named otherwise; retried with backoff."},
	ReasonBadConfig:        {Permanent, "The export client's configuration is unusable (the API's base URL or the tenant); fix the configuration, then replay."},
	ReasonHTTP429:          {Throttled, "The export API answered 429 Too Many Requests: every fetcher of the application waits as long as it asked."},
	ReasonHTTP503:          {Transient, "The export API answered 503 Service Unavailable: with a Retry-After every fetcher of the application waits that long; without one it is retried with backoff."},

	ReasonTokenTimeout:           {Transient, "The token endpoint did not answer in time; retried with backoff."},
	ReasonTokenConnectionReset:   {Transient, "The connection to the token endpoint was reset; retried with backoff."},
	ReasonTokenUnreachable:       {Transient, "The token endpoint could not be reached (connection refused or the name does not resolve); retried with backoff."},
	ReasonTokenRequestFailed:     {Transient, "The token request failed in a way not named otherwise; retried with backoff."},
	ReasonTokenBadResponse:       {Transient, "The token endpoint answered success without a usable token (often a proxy); retried with backoff."},
	ReasonClosed:                 {Canceled, "The token source was closed while a token was asked for (the process is stopping)."},
	ReasonInvalidClient:          {Permanent, "The token endpoint refused the application's client id or secret (invalid_client); fix the credentials, then replay."},
	ReasonInvalidScope:           {Permanent, "The token endpoint refused the scopes asked for (invalid_scope); fix the application's scopes, then replay."},
	ReasonInvalidTenant:          {Permanent, "The token endpoint does not know the tenant, or the application is not linked to it (invalid_tenant)."},
	ReasonUnauthorizedClient:     {Permanent, "The application may not use the client-credentials grant (unauthorized_client)."},
	ReasonInvalidRequest:         {Permanent, "The token endpoint found the token request malformed (invalid_request)."},
	ReasonInvalidGrant:           {Permanent, "The token endpoint refused the grant (invalid_grant)."},
	ReasonUnsupportedGrantType:   {Permanent, "The token endpoint does not offer the client-credentials grant (unsupported_grant_type)."},
	ReasonAccessDenied:           {Permanent, "The token endpoint denied access (access_denied)."},
	ReasonServerError:            {Transient, "The token endpoint reported an error of its own (server_error); retried with backoff."},
	ReasonTemporarilyUnavailable: {Transient, "The token endpoint is temporarily unavailable (temporarily_unavailable); retried with backoff."},
	ReasonOAuthError:             {Permanent, "The token endpoint refused the request with an error code that is not a plain word."},
	ReasonTokenWrongTenant:       {Permanent, "The token endpoint issued a token for another tenant than the one asked for (its tenant claim differs), so no export was requested with it: the token endpoint or the tenant's configuration is wrong; fix it, then replay."},

	ReasonStoreMismatch:    {Transient, "The export stored in the object store does not match what was downloaded (size or SHA-256); the object is removed and the job retried."},
	ReasonPublish:          {Transient, "Announcing the fetched export on the bus failed; retried with backoff (the stored export is reused)."},
	ReasonObjectStore:      {Transient, "Reading or writing the exports object store failed; retried with backoff."},
	ReasonBreakerOpen:      {Throttled, "The tenant's circuit breaker is open after repeated failures of the export API; the job waits until it lets a request through."},
	ReasonTokenBreakerOpen: {Throttled, "The token endpoint's circuit breaker is open after repeated failures; the job waits until it lets a request through."},
	ReasonExportDeadline:   {Permanent, "The export did not arrive whole within the tenant's export deadline (upstream.export_deadline, or the tenant's own); the partial export is deleted and the next scheduled export tries again. A slow upstream, or a municipality whose export needs a longer deadline."},
	ReasonExportTooLarge:   {Permanent, "The export is larger than the tenant's maximum export size (upstream.max_export_size, or the tenant's own); it was cut off there and deleted. Raise the limit if the municipality really is that large, then replay."},
	ReasonBadApplication:   {Permanent, "The application's name cannot key its quota counters (1 to 64 letters, digits, '-' or '_')."},
	ReasonQuotaStore:       {Transient, "The quota counters and token buckets (NATS key-value buckets) could not be read or written; retried with backoff."},
	ReasonQuotaContention:  {Transient, "Too many fetchers updated the same quota counter at once; retried with backoff."},
	ReasonUpstreamBackoff:  {Throttled, "The export API asked every fetcher of the application to wait (a 429, or a 503 with Retry-After); the job waits that long."},
	ReasonDailyQuotaUsed:   {Throttled, "The application's daily request quota is used up; the job waits for the next day (UTC)."},
	ReasonMonthlyQuotaUsed: {Throttled, "The application's monthly request quota is used up; the job waits for the next month (UTC)."},
	ReasonRateLimit:        {Throttled, "The application's request rate limit is reached; the job waits for its turn."},

	ReasonSnapshotCorrupt:        {Permanent, "The tenant's stored snapshot cannot be read, or belongs to another tenant; the tenant needs an operator."},
	ReasonSnapshotMismatch:       {Permanent, "The diff was given the snapshot of another tenant; a bug to report."},
	ReasonExportMissing:          {Permanent, "The export the message points at is no longer in the exports object store; request a new export."},
	ReasonExportMismatch:         {Permanent, "The stored export does not match the size or SHA-256 the fetcher announced; request a new export."},
	ReasonPreviousExportMissing:  {Permanent, "The previous export, which holds the old versions of the records this one updates or deletes, is missing from the exports object store."},
	ReasonPreviousExportMismatch: {Permanent, "The previous export does not match the tenant's snapshot, so the old versions of changed records cannot be read from it."},
	ReasonInvalidSubject:         {Permanent, "The message's subject is not a subject of its stream."},
	ReasonInvalidDocument:        {Permanent, "The export is not a PIFU document skolebuss can read; nothing of it is published."},
	ReasonInvalidEvent:           {Permanent, "An event built from the export is not valid; nothing more of the export is published. A bug to report, with the export."},
	ReasonDeletionHeld:           {Permanent, "The export would delete more of the tenant's records than the deletion threshold allows; it is held until an operator applies it with skolebuss replay --force."},
	ReasonSpoolIO:                {Transient, "The publisher's spool files could not be written or read (is the disk full?); retried with backoff."},
	ReasonPublishFailed:          {Transient, "Publishing a change to the LMS stream failed; the export is retried, and the retry sends only the events the LMS stream does not hold yet."},
	ReasonPublishAckTimeout:      {Transient, "The LMS stream acknowledged no publish for too long; the export is retried, and the retry sends only the events the LMS stream does not hold yet."},
	ReasonPublishIncomplete:      {Transient, "Not every change of the export was acknowledged by the LMS stream; the export is retried, and the retry sends only the events the LMS stream does not hold yet."},
	ReasonStreamRead:             {Transient, "Looking up what the LMS stream already holds of the export failed; retried with backoff."},
	ReasonRedoMismatch:           {Permanent, "A retry of the export found events of it in the LMS stream that differ from what it computes now (other changes, or another checksum): the stream and the tenant's snapshot disagree, and an operator must look before the export is applied."},

	ReasonEmptyMessage:          {Permanent, "The message has no body or no headers."},
	ReasonUnknownMessageType:    {Permanent, "The message's type (ce-type) is not a skolebuss type, or its CloudEvents version is not 1.0."},
	ReasonUnknownMessageVersion: {Permanent, "The message's type has a version this build does not read; run a newer build."},
	ReasonUnexpectedMessageType: {Permanent, "The message is of another type than its stream carries."},
	ReasonUndecodableMessage:    {Permanent, "The message's body does not decode as its type."},
	ReasonInvalidMessage:        {Permanent, "The message decodes but breaks its type's rules (a missing or malformed field)."},
}

// Reasons returns every reason of the set but the families of ReasonHTTP,
// ReasonTokenHTTP and ReasonOAuth, sorted.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasons))
	for r := range reasons {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Lookup returns the class and sentence of the reason whose code is code, as
// a dead letter or a metric label carries it. Any ReasonHTTP and
// ReasonTokenHTTP code is found; an OAuth error code outside the set is not.
func Lookup(code string) (ReasonInfo, bool) {
	if info, ok := reasons[Reason(code)]; ok {
		return info, true
	}
	if s, ok := strings.CutPrefix(code, tokenHTTPPrefix); ok {
		if status, ok := statusOf(s); ok {
			return ReasonInfo{httpClass(status), "The token endpoint answered HTTP " + s + " without an OAuth error code; " + httpOutcome(status)}, true
		}
	}
	if s, ok := strings.CutPrefix(code, httpPrefix); ok {
		if status, ok := statusOf(s); ok {
			return ReasonInfo{httpClass(status), "The export API answered HTTP " + s + "; " + httpOutcome(status)}, true
		}
	}
	return ReasonInfo{}, false
}

const (
	httpPrefix      = "http_"
	tokenHTTPPrefix = "token_http_"
)

// ReasonHTTP is the reason of an answer of the export API with status (a
// status without a reason of its own: not 401, 403 or 404): "http_<status>".
func ReasonHTTP(status int) Reason { return Reason(httpPrefix + strconv.Itoa(status)) }

// ReasonTokenHTTP is the reason of an answer of the token endpoint with
// status and no OAuth error code: "token_http_<status>".
func ReasonTokenHTTP(status int) Reason { return Reason(tokenHTTPPrefix + strconv.Itoa(status)) }

// ReasonOAuth is the reason of a token endpoint's answer with an OAuth error
// code: the code itself when it is 1 to 40 lower-case letters, digits and
// underscores (the codes of RFC 6749 are in the set, another is passed on as
// the upstream named it), ReasonOAuthError when it is not.
func ReasonOAuth(code string) Reason {
	if code == "" || len(code) > 40 {
		return ReasonOAuthError
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return ReasonOAuthError
		}
	}
	return Reason(code)
}

// LabelOther is the metric label of a reason outside the set.
const LabelOther = "other"

// Label is the value of a metric's reason label for reason code: the code
// when Lookup finds it (a reason of the set, or one of the bounded families
// of ReasonHTTP and ReasonTokenHTTP), "" for none, LabelOther for anything
// else, such as an OAuth error code outside the set that an upstream made
// up. A label's values so stay a known, bounded set whatever an upstream
// answers.
func Label(code string) string {
	if code == "" {
		return ""
	}
	if _, ok := Lookup(code); ok {
		return code
	}
	return LabelOther
}

// statusOf reads the three digits of an HTTP status.
func statusOf(s string) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 100
}

// httpClass is the class of an answer with status and no Retry-After.
func httpClass(status int) Class {
	switch {
	case status == 429:
		return Throttled
	case status >= 500, status == 408:
		return Transient
	}
	return Permanent
}

func httpOutcome(status int) string {
	switch httpClass(status) {
	case Throttled:
		return "the job waits as long as it asked."
	case Transient:
		return "retried with backoff (a 503 with a Retry-After waits that long instead)."
	}
	return "not retried: asking again will not change the answer."
}

// HasReason reports whether the outermost *Error in err's chain has reason
// r. It is how code decides on a reason; the reason's text is for dead
// letters, metrics and people.
func HasReason(err error, r Reason) bool {
	e, ok := outermost(err)
	return ok && e.Reason == r
}

// IsUpstreamThrottle reports whether err is the export API asking every
// caller of the application to wait: a 429, or a 503 with Retry-After
// (Throttled, reason ReasonHTTP429 or ReasonHTTP503). A Throttled error of
// our own (a quota, a rate limit, an open breaker) is not.
func IsUpstreamThrottle(err error) bool {
	e, ok := outermost(err)
	return ok && e.Class == Throttled && (e.Reason == ReasonHTTP429 || e.Reason == ReasonHTTP503)
}
