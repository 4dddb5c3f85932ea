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
