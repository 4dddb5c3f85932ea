package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// JobReason says why an export job was requested.
type JobReason string

const (
	ReasonSchedule JobReason = "schedule" // the tenant's schedule slot came
	ReasonDemand   JobReason = "demand"   // an operator asked (skolebuss export --tenant)
	ReasonReplay   JobReason = "replay"   // an operator replays a failed job
)

func (r JobReason) valid() bool {
	return r == ReasonSchedule || r == ReasonDemand || r == ReasonReplay
}

// ExportJob asks a fetcher to fetch one tenant's export. It travels on
// jobs.export.<tenant> in the JOBS work queue.
type ExportJob struct {
	JobID       string    `json:"job_id"`
	Tenant      string    `json:"tenant"`
	Application string    `json:"application"`
	Reason      JobReason `json:"reason"`
	// Slot is the start of the schedule slot (Reason schedule only): two
	// requesters that schedule the same slot produce one job.
	Slot        time.Time `json:"slot,omitzero"`
	RequestedAt time.Time `json:"requested_at"`
	// ReplayOf is the job id a replay repeats (Reason replay only).
	ReplayOf string `json:"replay_of,omitempty"`
}

// DedupKey is the job's Nats-Msg-Id: tenant and slot for a scheduled job, so
// that duplicate requests for one slot collapse within the JOBS stream's
// duplicate window; tenant and job id otherwise (an operator may give two
// tenants' jobs the same id).
func (j ExportJob) DedupKey() string {
	if j.Reason == ReasonSchedule {
		return "job." + j.Tenant + "." + j.Slot.UTC().Format(time.RFC3339)
	}
	return "job." + j.Tenant + "." + j.JobID
}

// Validate reports the first missing or malformed field.
func (j ExportJob) Validate() error {
	switch {
	case j.JobID == "":
		return errors.New("export job: job_id is empty")
	case !j.Reason.valid():
		return fmt.Errorf("export job %s: reason %q is not schedule, demand or replay", j.JobID, j.Reason)
	case j.Reason == ReasonSchedule && j.Slot.IsZero():
		return fmt.Errorf("export job %s: a scheduled job needs its slot", j.JobID)
	case j.Reason == ReasonReplay && j.ReplayOf == "":
		return fmt.Errorf("export job %s: a replay needs replay_of", j.JobID)
	case j.RequestedAt.IsZero():
		return fmt.Errorf("export job %s: requested_at is zero", j.JobID)
	}
	if err := ValidateTenant(j.Tenant); err != nil {
		return fmt.Errorf("export job %s: %w", j.JobID, err)
	}
	if err := ValidateApplication(j.Application); err != nil {
		return fmt.Errorf("export job %s: %w", j.JobID, err)
	}
	return nil
}

// FetchedExport says that a tenant's raw export is stored in the object
// store "exports" under Object. It travels on exports.fetched.<tenant>.
type FetchedExport struct {
	JobID       string    `json:"job_id"`
	ExportID    string    `json:"export_id"`
	Tenant      string    `json:"tenant"`
	Application string    `json:"application"`
	Object      string    `json:"object"` // object name in the "exports" object store
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"` // hex
	FetchedAt   time.Time `json:"fetched_at"`
	// APIVersion is the upstream's API version header, if it sent one.
	APIVersion string `json:"api_version,omitempty"`
	// Deprecation and Sunset are the upstream's headers of those names, as sent.
	Deprecation string `json:"deprecation,omitempty"`
	Sunset      string `json:"sunset,omitempty"`
	// Force asks the publisher to apply the export even if it would delete
	// more than the deletion threshold allows. Only an operator's replay of
	// a held export (skolebuss replay --force) sets it.
	Force bool `json:"force,omitempty"`
}

// DedupKey is the Nats-Msg-Id: one fetched export per tenant and job, so a fetcher that
// crashes after publishing and fetches the job again publishes nothing new.
// A forced replay has a key of its own, so it is not taken for a duplicate
// of the held message it repeats.
func (f FetchedExport) DedupKey() string {
	key := "fetched." + f.Tenant + "." + f.JobID
	if f.Force {
		return key + ".force"
	}
	return key
}

// Validate reports the first missing or malformed field.
func (f FetchedExport) Validate() error {
	switch {
	case f.JobID == "":
		return errors.New("fetched export: job_id is empty")
	case f.ExportID == "":
		return fmt.Errorf("fetched export of job %s: export_id is empty", f.JobID)
	case f.Object == "":
		return fmt.Errorf("fetched export %s: object is empty", f.ExportID)
	case f.Size < 0:
		return fmt.Errorf("fetched export %s: negative size %d", f.ExportID, f.Size)
	case len(f.SHA256) != 64:
		return fmt.Errorf("fetched export %s: sha256 %q is not 64 hex digits", f.ExportID, f.SHA256)
	case f.FetchedAt.IsZero():
		return fmt.Errorf("fetched export %s: fetched_at is zero", f.ExportID)
	}
	if _, err := hex.DecodeString(f.SHA256); err != nil {
		return fmt.Errorf("fetched export %s: sha256 is not hex", f.ExportID)
	}
	if err := ValidateTenant(f.Tenant); err != nil {
		return fmt.Errorf("fetched export %s: %w", f.ExportID, err)
	}
	if err := ValidateApplication(f.Application); err != nil {
		return fmt.Errorf("fetched export %s: %w", f.ExportID, err)
	}
	return nil
}

// Event is one change of one record of one tenant, as a vendor receives it on
// lms.<tenant>.<entity>.<op>: CloudEvents attributes in the headers, and the
// body {"tenant","export_id","object","previous"}.
type Event struct {
	// ID is the CloudEvents id and the Nats-Msg-Id: deterministic (the
	// publisher uses diff.Change.ID, a hash of tenant, entity, key, op,
	// content and the state the change applies to), so the same change
	// published twice is stored once.
	ID       string
	Tenant   string
	ExportID string
	Entity   pifu.Entity
	Op       Op
	// Key is the record's identity within tenant and entity (pifu.Record.Key);
	// it is the CloudEvents subject.
	Key  string
	Time time.Time
	// Object is the record after the change (before it, for a deletion), as
	// the JSON of the pifu record type.
	Object json.RawMessage
	// Previous holds, on updates only, the previous values of the changed
	// top-level fields of Object; a field absent before is null.
	Previous json.RawMessage
}

// Type is the CloudEvents type: no.skolebuss.<entity>.<op>.v1.
func (e Event) Type() string { return EventType(e.Entity, e.Op) }

// Validate reports the first missing or malformed field.
func (e Event) Validate() error {
	if err := e.validateFields(); err != nil {
		return err
	}
	if err := ValidateTenant(e.Tenant); err != nil {
		return fmt.Errorf("event %s: %w", e.ID, err)
	}
	return nil
}

// validateFields is Validate without the tenant, which an EventEncoder
// validates once for all its events.
func (e Event) validateFields() error {
	switch {
	case e.ID == "":
		return errors.New("event: id is empty")
	case !ValidEntity(e.Entity):
		return fmt.Errorf("event %s: unknown entity %q", e.ID, e.Entity)
	case !e.Op.Valid():
		return fmt.Errorf("event %s: unknown op %q", e.ID, e.Op)
	case e.Key == "":
		return fmt.Errorf("event %s: key is empty", e.ID)
	case e.ExportID == "":
		return fmt.Errorf("event %s: export_id is empty", e.ID)
	case e.Time.IsZero():
		return fmt.Errorf("event %s: time is zero", e.ID)
	case len(e.Object) == 0 || e.Object[0] != '{':
		return fmt.Errorf("event %s: object is not a JSON object", e.ID)
	case e.Op == OpUpdated && (len(e.Previous) == 0 || e.Previous[0] != '{'):
		return fmt.Errorf("event %s: an update needs previous as a JSON object", e.ID)
	case e.Op != OpUpdated && len(e.Previous) != 0:
		return fmt.Errorf("event %s: previous is only for updates", e.ID)
	}
	// id and key travel as the ce-id and ce-subject headers, export_id in
	// the JSON body only.
	for _, f := range [...]struct{ name, v string }{{"id", e.ID}, {"key", e.Key}} {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("event %q: %s %w", e.ID, f.name, err)
		}
	}
	if !utf8.ValidString(e.ExportID) {
		return fmt.Errorf("event %q: export_id is not valid UTF-8", e.ID)
	}
	return nil
}

// checkText refuses what a message cannot carry as it is: text that is
// not UTF-8 (JSON would write it as U+FFFD, so it would arrive changed) and
// a CR, LF or NUL (which would end or corrupt the NATS header it travels in
// as ce-id or ce-subject).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("has the control character %q at byte %d", s[i], i)
	}
	return nil
}

// Counts are the numbers of one entity in one export.
type Counts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Deleted   int `json:"deleted"`
	Unchanged int `json:"unchanged"`
	// Total is the number of records of the entity after the export is applied.
	Total int `json:"total"`
}

// Boundary marks the start or the completion of one export's events on
// lms.<tenant>.export.<phase>. Started carries the counts the publisher is
// about to publish; Completed the counts it published and Checksum, the
// checksum of the tenant's resulting state, so a vendor can tell when its
// copy is whole and detect a gap.
type Boundary struct {
	ID       string
	Tenant   string
	ExportID string
	Phase    Phase
	Time     time.Time
	Counts   map[pifu.Entity]Counts
	// Checksum is the checksum of the resulting state ("xxh64sum:<hex>",
	// see FormatChecksum), required on
	// completion.
	Checksum string
	// Upstream is what the upstream said of its API when it served the
	// export, on export.started only; nil when it said nothing.
	Upstream *Upstream
	// Findings count, per kind (FindingDanglingMembership,
	// FindingGroupMember), the records of the whole export that are not
	// whole, the same on both boundaries; nil when there are none.
	Findings map[string]int
	// Resync marks, on a vendor's stream, both boundaries of a resync: at
	// its export.started the vendor discards what it holds of the tenant;
	// the events up to its export.completed are created events of the
	// tenant's whole current state (the export ExportID), cut to the
	// vendor's profile.
	Resync bool
}

// The kinds of Boundary.Findings.
const (
	// FindingDanglingMembership: a membership whose group or person is
	// not in the document (its object's incomplete names "group" or
	// "person").
	FindingDanglingMembership = "dangling-membership"
	// FindingGroupMember: a membership whose member is a group (its
	// object's incomplete names "group-member").
	FindingGroupMember = "group-member"
)

// Upstream is what the upstream announced about its API with an export:
// its version, and a deprecation or sunset (RFC 9745 and RFC 8594 headers,
// as sent), so that a vendor learns of a coming change from the events.
type Upstream struct {
	APIVersion  string `json:"api_version,omitempty"`
	Deprecation string `json:"deprecation,omitempty"`
	Sunset      string `json:"sunset,omitempty"`
}

// UpstreamOf is what fe says the upstream announced; nil when nothing.
func UpstreamOf(fe FetchedExport) *Upstream {
	if fe.APIVersion == "" && fe.Deprecation == "" && fe.Sunset == "" {
		return nil
	}
	return &Upstream{APIVersion: fe.APIVersion, Deprecation: fe.Deprecation, Sunset: fe.Sunset}
}

// Type is the CloudEvents type: no.skolebuss.export.<phase>.v1.
func (b Boundary) Type() string { return typePrefix + "export." + string(b.Phase) + ".v1" }

// BoundaryID is the deterministic id of an export's boundary event.
func BoundaryID(tenant, exportID string, p Phase) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + exportID + "\x00" + string(p)))
	return hex.EncodeToString(sum[:16])
}

// Validate reports the first missing or malformed field.
func (b Boundary) Validate() error {
	switch {
	case b.ID == "":
		return errors.New("boundary event: id is empty")
	case !b.Phase.Valid():
		return fmt.Errorf("boundary event %s: unknown phase %q", b.ID, b.Phase)
	case b.ExportID == "":
		return fmt.Errorf("boundary event %s: export_id is empty", b.ID)
	case b.Time.IsZero():
		return fmt.Errorf("boundary event %s: time is zero", b.ID)
	case b.Phase == PhaseCompleted && b.Checksum == "":
		return fmt.Errorf("boundary event %s: export.completed needs a checksum", b.ID)
	}
	for _, f := range [...]struct{ name, v string }{{"id", b.ID}, {"export_id", b.ExportID}, {"checksum", b.Checksum}} {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("boundary event %q: %s %w", b.ID, f.name, err)
		}
	}
	for e := range b.Counts {
		if !ValidEntity(e) {
			return fmt.Errorf("boundary event %s: counts of unknown entity %q", b.ID, e)
		}
	}
	for k, n := range b.Findings {
		if k != FindingDanglingMembership && k != FindingGroupMember || n <= 0 {
			return fmt.Errorf("boundary event %s: findings %q: %d (want a known kind and a positive count)", b.ID, k, n)
		}
	}
	if err := ValidateTenant(b.Tenant); err != nil {
		return fmt.Errorf("boundary event %s: %w", b.ID, err)
	}
	return nil
}

// DeadLetter is a message a stage gave up on, on dlq.<stage>.<tenant>: why,
// how often it was tried, the trace that tried it, and the failed message
// itself (without secrets), so an operator can replay it.
type DeadLetter struct {
	ID       string    `json:"id"`
	Stage    string    `json:"stage"`
	Tenant   string    `json:"tenant"`
	Reason   string    `json:"reason"` // failure.ReasonOf: a code of failure's set, failure.Lookup tells its sentence
	Class    string    `json:"class"`  // failure.Class.String()
	Attempts int       `json:"attempts"`
	TraceID  string    `json:"trace_id,omitempty"`
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failed_at"`
	Message  FailedMsg `json:"message"`
}

// FailedMsg is the message that failed: its subject, its headers (secret
// ones removed, see NewDeadLetter) and its data.
type FailedMsg struct {
	Subject string              `json:"subject"`
	Headers map[string][]string `json:"headers,omitempty"`
	Data    []byte              `json:"data,omitempty"`
}

// Validate reports the first missing or malformed field.
func (d DeadLetter) Validate() error {
	switch {
	case d.ID == "":
		return errors.New("dead letter: id is empty")
	case d.Reason == "":
		return fmt.Errorf("dead letter %s: reason is empty", d.ID)
	case d.FailedAt.IsZero():
		return fmt.Errorf("dead letter %s: failed_at is zero", d.ID)
	}
	if err := ValidateToken("stage", d.Stage); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.ID, err)
	}
	if err := validateDLQTenant(d.Tenant); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.ID, err)
	}
	return nil
}

// QuotaAlert is an event about an application's use of a quota, on
// alerts.quota.<application>: a threshold crossed (kind "threshold"), requests
// paused because the quota is used up ("paused", until the period's reset),
// or resumed after such a pause ("resumed"). Its fields match quota.Alert
// one to one, so a quota.Alert converts with messages.QuotaAlert(a).
type QuotaAlert struct {
	Application string    `json:"application"`
	Kind        string    `json:"kind"`                // "threshold", "paused" or "resumed"
	Period      string    `json:"period"`              // "daily" or "monthly"
	PeriodKey   string    `json:"period_key"`          // the period in the upstream's zone: "2026-12-01" or "2026-12"
	Threshold   float64   `json:"threshold,omitempty"` // the crossed alert_at share, e.g. 0.8
	Used        int64     `json:"used"`
	Limit       int64     `json:"limit"`
	At          time.Time `json:"at"`
	Until       time.Time `json:"until,omitzero"` // a pause's end: the period's reset
}

// DedupKey is the Nats-Msg-Id: one alert per application, period, kind and
// threshold, however many fetcher replicas notice it (the same key as
// quota.Alert.ID).
func (q QuotaAlert) DedupKey() string {
	if q.Kind == "threshold" || q.Kind == "" {
		return fmt.Sprintf("quota-%s-%s-%s-%g", q.Application, q.Period, q.PeriodKey, q.Threshold)
	}
	return fmt.Sprintf("quota-%s-%s-%s-%s", q.Application, q.Period, q.PeriodKey, q.Kind)
}

// Validate reports the first missing or malformed field.
func (q QuotaAlert) Validate() error {
	switch {
	case q.Kind != "threshold" && q.Kind != "paused" && q.Kind != "resumed":
		return fmt.Errorf("quota alert: kind %q is not threshold, paused or resumed", q.Kind)
	case q.Period != "daily" && q.Period != "monthly":
		return fmt.Errorf("quota alert: period %q is not daily or monthly", q.Period)
	case q.PeriodKey == "":
		return errors.New("quota alert: period_key is empty")
	case q.Limit <= 0:
		return fmt.Errorf("quota alert: limit %d is not positive", q.Limit)
	case q.At.IsZero():
		return errors.New("quota alert: at is zero")
	}
	return ValidateApplication(q.Application)
}
