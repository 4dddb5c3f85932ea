package messages

import (
	"errors"
	"testing"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// ParseVendorSubject reads what VendorEventSubject and VendorBoundarySubject
// write, and refuses what no vendor stream holds.
func TestParseVendorSubject(t *testing.T) {
	for _, e := range pifu.Entities {
		for _, op := range Ops {
			s, err := VendorEventSubject("roster-only_2", tenant, e, op)
			if err != nil {
				t.Fatal(err)
			}
			v, got, err := ParseVendorSubject(s)
			if err != nil || v != "roster-only_2" || got != (LMSSubject{Tenant: tenant, Entity: e, Op: op}) {
				t.Errorf("%q -> %q %+v, %v", s, v, got, err)
			}
		}
	}
	s, _ := VendorBoundarySubject("a", tenant, PhaseStarted)
	if v, got, err := ParseVendorSubject(s); err != nil || v != "a" || !got.IsBoundary() || got.Phase != PhaseStarted || got.Tenant != tenant {
		t.Errorf("boundary %q -> %q %+v, %v", s, v, got, err)
	}
	for _, bad := range []string{
		"lms." + tenant + ".person.created",
		"vendor.a." + tenant + ".person",
		"vendor.a." + tenant + ".pupil.created",
		"vendor.a." + tenant + ".person.moved",
		"vendor.a." + tenant + ".export.halfway",
		"vendor.*." + tenant + ".person.created",
		"vendor.a.*.person.created",
		"vendor.a." + tenant + ".person.created.x",
		"",
	} {
		if _, _, err := ParseVendorSubject(bad); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("%q: %v, want ErrInvalidSubject", bad, err)
		}
	}
}

// TenantUnlinked goes on the subject ParseVendorUnlinkedSubject reads, and
// decodes to what was encoded.
func TestTenantUnlinked(t *testing.T) {
	u := TenantUnlinked{ID: UnlinkedID("roster-only_2", tenant, "exp-42"), Vendor: "roster-only_2", Tenant: tenant, Time: at}
	m, err := Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	if v, got, err := ParseVendorUnlinkedSubject(m.Subject); err != nil || v != u.Vendor || got != tenant {
		t.Errorf("%q -> %q %q, %v", m.Subject, v, got, err)
	}
	if m.Header.Get(HeaderMsgID) != u.ID || m.Header.Get(HeaderType) != TypeTenantUnlinked {
		t.Errorf("headers %v", m.Header)
	}
	back, err := Decode[TenantUnlinked](m)
	if err != nil || back.ID != u.ID || back.Vendor != u.Vendor || back.Tenant != u.Tenant || !back.Time.Equal(u.Time) {
		t.Errorf("decoded %+v, %v; want %+v", back, err, u)
	}
	if _, err := Decode[Boundary](m); err == nil {
		t.Error("a tenant.unlinked decoded as a boundary")
	}
	if UnlinkedID("a", tenant, "exp-42") == UnlinkedID("a", tenant, "exp-43") || UnlinkedID("a", tenant, "x") == UnlinkedID("b", tenant, "x") {
		t.Error("UnlinkedID does not tell exports or vendors apart")
	}
	for _, bad := range []string{
		"vendor.a." + tenant + ".tenant.linked",
		"vendor.a." + tenant + ".export.completed",
		"vendor.*." + tenant + ".tenant.unlinked",
		"vendor.a.*.tenant.unlinked",
		"lms.a." + tenant + ".tenant.unlinked",
		"vendor.a." + tenant + ".tenant.unlinked.x",
	} {
		if _, _, err := ParseVendorUnlinkedSubject(bad); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("%q: %v, want ErrInvalidSubject", bad, err)
		}
	}
	if _, _, err := ParseVendorSubject(m.Subject); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("ParseVendorSubject(%q): %v, want ErrInvalidSubject", m.Subject, err)
	}
}
