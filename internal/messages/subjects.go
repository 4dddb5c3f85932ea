package messages

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// Subject filters of the streams, as the bus provisions them.
const (
	JobsSubjects    = "jobs.export.>"
	ExportsSubjects = "exports.fetched.>"
	LMSSubjects     = "lms.>"
	DLQSubjects     = "dlq.>"
	AlertsSubjects  = "alerts.>"
)

// MaxTokenLen is the longest tenant id, application name or stage name
// accepted in a subject.
const MaxTokenLen = 64

// ErrInvalidToken is wrapped by every error about a subject token (a tenant
// id, an application name, a stage) that would break a subject.
var ErrInvalidToken = errors.New("invalid subject token")

// ErrInvalidSubject is wrapped by every error of the subject parsers.
var ErrInvalidSubject = errors.New("invalid subject")

// MaxVendorLen is the longest vendor name, in bytes.
const MaxVendorLen = 32

// ValidateVendor reports whether name can name an LMS vendor: a subject
// token (ValidateToken) of at most MaxVendorLen bytes with no upper-case
// letter, since it names the vendor's stream, subjects, NATS user and inbox.
func ValidateVendor(name string) error {
	if err := ValidateToken("vendor name", name); err != nil {
		return err
	}
	if len(name) > MaxVendorLen {
		return fmt.Errorf("%w: vendor name %q is %d bytes long, at most %d allowed", ErrInvalidToken, name, len(name), MaxVendorLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return fmt.Errorf("%w: vendor name %q has the upper-case %q at byte %d: lower-case letters, digits, '-' and '_' only", ErrInvalidToken, name, c, i)
		}
	}
	return nil
}

// ValidateToken reports whether s can stand as one token of a NATS subject:
// 1 to MaxTokenLen characters, each an ASCII letter, digit, '-' or '_'. Dots,
// the wildcards '*' and '>', spaces, control characters and everything else
// are refused rather than escaped, so one tenant can never address another's
// subjects. what names the token in the error ("tenant", "application").
func ValidateToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalidToken, what)
	}
	if len(s) > MaxTokenLen {
		return fmt.Errorf("%w: %s %q is %d bytes long, at most %d allowed",
			ErrInvalidToken, what, truncate(s), len(s), MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			continue
		}
		var why string
		switch {
		case c == '.':
			why = "a dot (subject separator)"
		case c == '*' || c == '>':
			why = fmt.Sprintf("the wildcard %q", c)
		case c == ' ' || c == '\t':
			why = "white space"
		case c < 0x20 || c == 0x7f:
			why = "a control character"
		case c >= utf8.RuneSelf:
			why = "a non-ASCII character"
		default:
			why = fmt.Sprintf("the character %q", c)
		}
		return fmt.Errorf("%w: %s %q contains %s at byte %d (allowed: letters, digits, '-', '_')",
			ErrInvalidToken, what, truncate(s), why, i)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > MaxTokenLen+8 {
		return s[:MaxTokenLen] + "..."
	}
	return s
}

// ValidateTenant reports whether tenant is a tenant id in its one accepted
// form: a UUID written canonically, 8-4-4-4-12 lower-case hexadecimal digits
// (aa750693-e3ea-441b-93fe-6a71a8371afa), as the upstream's tenant_ID is.
// Upper case is refused here; NormalizeTenant, used where an id enters
// (the configuration, the command line), lowers it first, so one tenant
// never has two spellings in subjects, snapshots or metrics.
func ValidateTenant(tenant string) error {
	if err := ValidateToken("tenant", tenant); err != nil {
		return err
	}
	if len(tenant) != 36 {
		return fmt.Errorf("%w: tenant %q is not a UUID (%s)", ErrInvalidToken, tenant, uuidForm)
	}
	for i := 0; i < len(tenant); i++ {
		c := tenant[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return fmt.Errorf("%w: tenant %q is not a UUID: want '-' at byte %d (%s)", ErrInvalidToken, tenant, i, uuidForm)
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			return fmt.Errorf("%w: tenant %q has the upper-case %q at byte %d: tenant ids are written in lower case", ErrInvalidToken, tenant, c, i)
		default:
			return fmt.Errorf("%w: tenant %q is not a UUID: %q at byte %d is not a hex digit (%s)", ErrInvalidToken, tenant, c, i, uuidForm)
		}
	}
	return nil
}

const uuidForm = "want 8-4-4-4-12 lower-case hex digits, like aa750693-e3ea-441b-93fe-6a71a8371afa"

// NormalizeTenant is the tenant id s in its canonical form: its ASCII
// letters lowered, then checked by ValidateTenant. The configuration and
// the command line take tenant ids through it; everything after them
// (subjects, messages) takes only the canonical form.
func NormalizeTenant(s string) (string, error) {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	t := string(b)
	if err := ValidateTenant(t); err != nil {
		return s, err
	}
	return t, nil
}

// UnknownTenant is the tenant of a dead letter whose message named no
// tenant (a message that did not decode): dlq.<stage>.unknown. It is valid
// in dead-letter subjects and dead letters only.
const UnknownTenant = "unknown"

// validateDLQTenant is ValidateTenant that also takes UnknownTenant.
func validateDLQTenant(tenant string) error {
	if tenant == UnknownTenant {
		return nil
	}
	return ValidateTenant(tenant)
}

// ValidateApplication validates an application name as a subject token.
func ValidateApplication(app string) error { return ValidateToken("application", app) }

// Op is what happened to a record: created, updated or deleted.
type Op string

const (
	OpCreated Op = "created"
	OpUpdated Op = "updated"
	OpDeleted Op = "deleted"
)

// Ops lists the operations.
var Ops = []Op{OpCreated, OpUpdated, OpDeleted}

// Valid reports whether o is one of Ops.
func (o Op) Valid() bool { return o == OpCreated || o == OpUpdated || o == OpDeleted }

// ValidEntity reports whether e is one of pifu.Entities.
func ValidEntity(e pifu.Entity) bool {
	for _, x := range pifu.Entities {
		if e == x {
			return true
		}
	}
	return false
}

// Phase is the boundary of one export on a tenant's event subjects.
type Phase string

const (
	PhaseStarted   Phase = "started"
	PhaseCompleted Phase = "completed"
)

// Valid reports whether p is PhaseStarted or PhaseCompleted.
func (p Phase) Valid() bool { return p == PhaseStarted || p == PhaseCompleted }

// JobSubject is jobs.export.<tenant>.
func JobSubject(tenant string) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "jobs.export." + tenant, nil
}

// FetchedSubject is exports.fetched.<tenant>.
func FetchedSubject(tenant string) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "exports.fetched." + tenant, nil
}

// EventSubject is lms.<tenant>.<entity>.<op>.
func EventSubject(tenant string, e pifu.Entity, op Op) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	if !ValidEntity(e) {
		return "", fmt.Errorf("%w: unknown entity %q", ErrInvalidToken, e)
	}
	if !op.Valid() {
		return "", fmt.Errorf("%w: unknown op %q", ErrInvalidToken, op)
	}
	return "lms." + tenant + "." + string(e) + "." + string(op), nil
}

// TenantEventsFilter is lms.<tenant>.>: every event of one tenant, boundaries
// included, for a vendor's consumer.
func TenantEventsFilter(tenant string) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "lms." + tenant + ".>", nil
}

// BoundarySubject is lms.<tenant>.export.started or lms.<tenant>.export.completed.
func BoundarySubject(tenant string, p Phase) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	if !p.Valid() {
		return "", fmt.Errorf("%w: unknown export phase %q", ErrInvalidToken, p)
	}
	return "lms." + tenant + ".export." + string(p), nil
}

// DLQSubject is dlq.<stage>.<tenant>.
func DLQSubject(stage, tenant string) (string, error) {
	if err := ValidateToken("stage", stage); err != nil {
		return "", err
	}
	if err := validateDLQTenant(tenant); err != nil {
		return "", err
	}
	return "dlq." + stage + "." + tenant, nil
}

// TenantBoundariesFilter is lms.<tenant>.export.*: the export.started and
// export.completed events of one tenant, none of its changes.
func TenantBoundariesFilter(tenant string) (string, error) {
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "lms." + tenant + ".export.*", nil
}

// DLQFilter is dlq.<stage>.<tenant> with an empty stage or tenant standing
// for any ("*"): the dead letters of one stage, one tenant, both or all.
func DLQFilter(stage, tenant string) (string, error) {
	s, t := "*", "*"
	if stage != "" {
		if err := ValidateToken("stage", stage); err != nil {
			return "", err
		}
		s = stage
	}
	if tenant != "" {
		if err := validateDLQTenant(tenant); err != nil {
			return "", err
		}
		t = tenant
	}
	return "dlq." + s + "." + t, nil
}

// QuotaAlertSubject is alerts.quota.<application>.
func QuotaAlertSubject(app string) (string, error) {
	if err := ValidateApplication(app); err != nil {
		return "", err
	}
	return "alerts.quota." + app, nil
}

func split(subject string, prefix []string, n int) ([]string, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != n {
		return nil, fmt.Errorf("%w: %q has %d tokens, want %d", ErrInvalidSubject, subject, len(parts), n)
	}
	for i, p := range prefix {
		if p != "" && parts[i] != p {
			return nil, fmt.Errorf("%w: %q does not start with %s", ErrInvalidSubject, subject, strings.Join(prefix, "."))
		}
	}
	return parts, nil
}

// ParseJobSubject returns the tenant of jobs.export.<tenant>.
func ParseJobSubject(s string) (tenant string, err error) {
	p, err := split(s, []string{"jobs", "export"}, 3)
	if err != nil {
		return "", err
	}
	return p[2], wrapSubject(s, ValidateTenant(p[2]))
}

// ParseFetchedSubject returns the tenant of exports.fetched.<tenant>.
func ParseFetchedSubject(s string) (tenant string, err error) {
	p, err := split(s, []string{"exports", "fetched"}, 3)
	if err != nil {
		return "", err
	}
	return p[2], wrapSubject(s, ValidateTenant(p[2]))
}

// LMSSubject is a parsed subject of the LMS stream: a change event
// (Entity and Op set) or an export boundary (Phase set).
type LMSSubject struct {
	Tenant string
	Entity pifu.Entity
	Op     Op
	Phase  Phase
}

// IsBoundary reports whether the subject is an export.started or
// export.completed subject.
func (l LMSSubject) IsBoundary() bool { return l.Phase != "" }

// ParseLMSSubject parses lms.<tenant>.<entity>.<op> and
// lms.<tenant>.export.<phase>.
func ParseLMSSubject(s string) (LMSSubject, error) {
	p, err := split(s, []string{"lms"}, 4)
	if err != nil {
		return LMSSubject{}, err
	}
	if err := ValidateTenant(p[1]); err != nil {
		return LMSSubject{}, wrapSubject(s, err)
	}
	if p[2] == "export" {
		ph := Phase(p[3])
		if !ph.Valid() {
			return LMSSubject{}, fmt.Errorf("%w: %q: unknown export phase %q", ErrInvalidSubject, s, p[3])
		}
		return LMSSubject{Tenant: p[1], Phase: ph}, nil
	}
	e, op := pifu.Entity(p[2]), Op(p[3])
	if !ValidEntity(e) {
		return LMSSubject{}, fmt.Errorf("%w: %q: unknown entity %q", ErrInvalidSubject, s, p[2])
	}
	if !op.Valid() {
		return LMSSubject{}, fmt.Errorf("%w: %q: unknown op %q", ErrInvalidSubject, s, p[3])
	}
	return LMSSubject{Tenant: p[1], Entity: e, Op: op}, nil
}

// ParseDLQSubject returns the stage and tenant of dlq.<stage>.<tenant>.
func ParseDLQSubject(s string) (stage, tenant string, err error) {
	p, err := split(s, []string{"dlq"}, 3)
	if err != nil {
		return "", "", err
	}
	if err := ValidateToken("stage", p[1]); err != nil {
		return "", "", wrapSubject(s, err)
	}
	return p[1], p[2], wrapSubject(s, validateDLQTenant(p[2]))
}

// ParseQuotaAlertSubject returns the application of alerts.quota.<app>.
func ParseQuotaAlertSubject(s string) (app string, err error) {
	p, err := split(s, []string{"alerts", "quota"}, 3)
	if err != nil {
		return "", err
	}
	return p[2], wrapSubject(s, ValidateApplication(p[2]))
}

func wrapSubject(s string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %q: %w", ErrInvalidSubject, s, err)
}
