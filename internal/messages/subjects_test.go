package messages

import (
	"errors"
	"strings"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

func TestHostileTokensRefused(t *testing.T) {
	cases := map[string]string{
		"":                        "is empty",
		"a.b":                     "a dot",
		"*":                       "wildcard",
		">":                       "wildcard",
		"tenant>":                 "wildcard",
		"two words":               "white space",
		"tab\there":               "white space",
		"nul\x00":                 "control character",
		"bell\a":                  "control character",
		"del\x7f":                 "control character",
		"måneby":                  "non-ASCII",
		"a/b":                     "the character '/'",
		strings.Repeat("x", 65):   "at most 64",
		strings.Repeat("x", 1000): "at most 64",
	}
	for tok, want := range cases {
		for name, f := range map[string]func(string) (string, error){
			"job":     JobSubject,
			"fetched": FetchedSubject,
			"alert":   QuotaAlertSubject,
			"event":   func(s string) (string, error) { return EventSubject(s, pifu.EntityPerson, OpCreated) },
			"bound":   func(s string) (string, error) { return BoundarySubject(s, PhaseStarted) },
			"dlqten":  func(s string) (string, error) { return DLQSubject("fetcher", s) },
			"dlqstg":  func(s string) (string, error) { return DLQSubject(s, tenant) },
			"filter":  TenantEventsFilter,
			"bfilter": TenantBoundariesFilter,
			"dlqfstg": func(s string) (string, error) { return DLQFilter(s, tenant) },
			"dlqften": func(s string) (string, error) { return DLQFilter("publish", s) },
		} {
			if tok == "" && strings.HasPrefix(name, "dlqf") {
				continue // an empty token stands for any in a filter
			}
			s, err := f(tok)
			if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s(%q) = %q, %v; want an error about %q", name, tok, s, err, want)
			}
			if err != nil && len(err.Error()) > 300 {
				t.Errorf("%s(%q): error of %d bytes", name, tok, len(err.Error()))
			}
		}
	}
	if err := ValidateToken("application", strings.Repeat("x", 64)); err != nil {
		t.Errorf("64 characters refused: %v", err)
	}
}

func TestTenantIsACanonicalUUID(t *testing.T) {
	refused := map[string]string{
		"t1":                                     "is not a UUID",
		strings.Repeat("x", 64):                  "is not a UUID",
		"aa750693e3ea441b93fe6a71a8371afa":       "is not a UUID",
		"aa750693-e3ea-441b-93fe-6a71a8371afaa":  "is not a UUID",
		"aa750693_e3ea-441b-93fe-6a71a8371afa":   "want '-' at byte 8",
		"aa750693-e3ea-441b-93fe-6a71a8371afg":   "'g' at byte 35 is not a hex digit",
		"AA750693-E3EA-441B-93FE-6A71A8371AFA":   "upper-case 'A' at byte 0",
		"aa750693-e3ea-441b-93fe-6a71a8371aFa":   "upper-case 'F' at byte 34",
		"aa750693-e3ea-441b-93fe-6a71a8371afa.x": "a dot",
	}
	for tok, want := range refused {
		err := ValidateTenant(tok)
		if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateTenant(%q) = %v; want an error about %q", tok, err, want)
		}
		if _, err := JobSubject(tok); err == nil {
			t.Errorf("JobSubject(%q) accepted", tok)
		}
	}
	if err := ValidateTenant(tenant); err != nil {
		t.Errorf("ValidateTenant(%q) = %v", tenant, err)
	}
	got, err := NormalizeTenant("AA750693-E3EA-441b-93fe-6A71A8371AFA")
	if err != nil || got != tenant {
		t.Errorf("NormalizeTenant(upper case) = %q, %v; want %q", got, err, tenant)
	}
	for _, bad := range []string{"t1", "AA750693-E3EA-441b-93fe-6A71A8371AFG", "\u212aa750693-e3ea-441b-93fe-6a71a8371af"} {
		if got, err := NormalizeTenant(bad); err == nil {
			t.Errorf("NormalizeTenant(%q) = %q, accepted", bad, got)
		}
	}
}

func TestUnknownTenantOnlyInDeadLetters(t *testing.T) {
	s, err := DLQSubject("fetch", UnknownTenant)
	if err != nil || s != "dlq.fetch.unknown" {
		t.Fatalf("DLQSubject(unknown) = %q, %v", s, err)
	}
	if stage, ten, err := ParseDLQSubject(s); err != nil || stage != "fetch" || ten != UnknownTenant {
		t.Errorf("ParseDLQSubject(%q) = %q, %q, %v", s, stage, ten, err)
	}
	if f, err := DLQFilter("", UnknownTenant); err != nil || f != "dlq.*.unknown" {
		t.Errorf("DLQFilter(unknown) = %q, %v", f, err)
	}
	if _, err := JobSubject(UnknownTenant); err == nil {
		t.Error("JobSubject(unknown) accepted")
	}
	if _, err := EventSubject(UnknownTenant, pifu.EntityPerson, OpCreated); err == nil {
		t.Error("EventSubject(unknown) accepted")
	}
}

func TestSubjectsRoundTrip(t *testing.T) {
	s, _ := JobSubject(tenant)
	if got, err := ParseJobSubject(s); err != nil || got != tenant || s != "jobs.export."+tenant {
		t.Errorf("job %q -> %q, %v", s, got, err)
	}
	s, _ = FetchedSubject(tenant)
	if got, err := ParseFetchedSubject(s); err != nil || got != tenant || s != "exports.fetched."+tenant {
		t.Errorf("fetched %q -> %q, %v", s, got, err)
	}
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			s, err := EventSubject(tenant, e, op)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseLMSSubject(s)
			if err != nil || got != (LMSSubject{Tenant: tenant, Entity: e, Op: op}) || got.IsBoundary() {
				t.Errorf("%q -> %+v, %v", s, got, err)
			}
		}
	}
	s, _ = BoundarySubject(tenant, PhaseCompleted)
	if got, err := ParseLMSSubject(s); err != nil || !got.IsBoundary() || got.Phase != PhaseCompleted || s != "lms."+tenant+".export.completed" {
		t.Errorf("boundary %q -> %+v, %v", s, got, err)
	}
	s, _ = DLQSubject("publisher", tenant)
	if st, tn, err := ParseDLQSubject(s); err != nil || st != "publisher" || tn != tenant {
		t.Errorf("dlq %q -> %q %q %v", s, st, tn, err)
	}
	s, _ = QuotaAlertSubject("skolebuss-demo")
	if app, err := ParseQuotaAlertSubject(s); err != nil || app != "skolebuss-demo" || s != "alerts.quota.skolebuss-demo" {
		t.Errorf("alert %q -> %q %v", s, app, err)
	}
	if _, err := EventSubject(tenant, "pupil", OpCreated); err == nil {
		t.Error("unknown entity accepted")
	}
	if _, err := EventSubject(tenant, pifu.EntityPerson, "moved"); err == nil {
		t.Error("unknown op accepted")
	}
	for _, bad := range []string{"lms." + tenant + ".person", "lms." + tenant + ".pupil.created", "lms." + tenant + ".person.moved",
		"lms.*.person.created", "lms." + tenant + ".export.halfway", "jobs.export.a.b", "jobs.import." + tenant, "dlq.x", ""} {
		_, e1 := ParseLMSSubject(bad)
		_, e2 := ParseJobSubject(bad)
		if e1 == nil && e2 == nil {
			t.Errorf("%q parsed", bad)
		}
		if !errors.Is(e1, ErrInvalidSubject) {
			t.Errorf("%q: %v does not wrap ErrInvalidSubject", bad, e1)
		}
	}
}

func TestFilters(t *testing.T) {
	cases := []struct {
		got  func() (string, error)
		want string
	}{
		{func() (string, error) { return DLQFilter("", "") }, "dlq.*.*"},
		{func() (string, error) { return DLQFilter("fetch", "") }, "dlq.fetch.*"},
		{func() (string, error) { return DLQFilter("", tenant) }, "dlq.*." + tenant},
		{func() (string, error) { return DLQFilter("publish", tenant) }, "dlq.publish." + tenant},
		{func() (string, error) { return TenantBoundariesFilter(tenant) }, "lms." + tenant + ".export.*"},
		{func() (string, error) { return TenantEventsFilter(tenant) }, "lms." + tenant + ".>"},
	}
	for _, c := range cases {
		if got, err := c.got(); err != nil || got != c.want {
			t.Errorf("got %q, %v; want %q", got, err, c.want)
		}
	}
	// The parsers read what the builders write.
	dlq, _ := DLQSubject("publish", tenant)
	if stage, ten, err := ParseDLQSubject(dlq); err != nil || stage != "publish" || ten != tenant {
		t.Errorf("ParseDLQSubject(%q) = %q, %q, %v", dlq, stage, ten, err)
	}
	for _, p := range []Phase{PhaseStarted, PhaseCompleted} {
		b, _ := BoundarySubject(tenant, p)
		if l, err := ParseLMSSubject(b); err != nil || !l.IsBoundary() || l.Phase != p {
			t.Errorf("ParseLMSSubject(%q) = %+v, %v", b, l, err)
		}
	}
}
