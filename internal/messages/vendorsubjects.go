package messages

import (
	"fmt"
	"strings"

	"github.com/skolebuss/skolebuss/internal/pifu"
)

// The subjects of a vendor's stream: vendor.<vendor>.<tenant>.<entity>.<op>
// and vendor.<vendor>.<tenant>.export.<phase>. The vendor name is a subject
// token (the configuration allows lower-case letters, digits, '-' and '_').

// VendorSubjects is vendor.<vendor>.>: every subject of one vendor's stream.
func VendorSubjects(vendor string) (string, error) {
	if err := ValidateToken("vendor", vendor); err != nil {
		return "", err
	}
	return "vendor." + vendor + ".>", nil
}

// VendorEventSubject is vendor.<vendor>.<tenant>.<entity>.<op>.
func VendorEventSubject(vendor, tenant string, e pifu.Entity, op Op) (string, error) {
	if err := ValidateToken("vendor", vendor); err != nil {
		return "", err
	}
	s, err := EventSubject(tenant, e, op) // lms.<tenant>.<entity>.<op>
	if err != nil {
		return "", err
	}
	return "vendor." + vendor + s[len("lms"):], nil
}

// VendorBoundarySubject is vendor.<vendor>.<tenant>.export.<phase>.
func VendorBoundarySubject(vendor, tenant string, p Phase) (string, error) {
	if err := ValidateToken("vendor", vendor); err != nil {
		return "", err
	}
	s, err := BoundarySubject(tenant, p)
	if err != nil {
		return "", err
	}
	return "vendor." + vendor + s[len("lms"):], nil
}

// ParseVendorSubject parses vendor.<vendor>.<tenant>.<entity>.<op> and
// vendor.<vendor>.<tenant>.export.<phase>: the vendor, and the rest as
// ParseLMSSubject parses the same subject of the LMS stream.
func ParseVendorSubject(s string) (vendor string, subj LMSSubject, err error) {
	p, err := split(s, []string{"vendor"}, 5)
	if err != nil {
		return "", LMSSubject{}, err
	}
	if err := ValidateToken("vendor", p[1]); err != nil {
		return "", LMSSubject{}, wrapSubject(s, err)
	}
	subj, err = ParseLMSSubject("lms." + strings.Join(p[2:], "."))
	if err != nil {
		return "", LMSSubject{}, fmt.Errorf("vendor subject %q: %w", s, err)
	}
	return p[1], subj, nil
}

// VendorUnlinkedSubject is vendor.<vendor>.<tenant>.tenant.unlinked: the
// subject of the TenantUnlinked event that closes tenant's flow to vendor.
func VendorUnlinkedSubject(vendor, tenant string) (string, error) {
	if err := ValidateToken("vendor", vendor); err != nil {
		return "", err
	}
	if err := ValidateTenant(tenant); err != nil {
		return "", err
	}
	return "vendor." + vendor + "." + tenant + ".tenant.unlinked", nil
}

// ParseVendorUnlinkedSubject parses vendor.<vendor>.<tenant>.tenant.unlinked
// and returns the vendor and the tenant; any other subject is
// ErrInvalidSubject.
func ParseVendorUnlinkedSubject(s string) (vendor, tenant string, err error) {
	p, err := split(s, []string{"vendor"}, 5)
	if err != nil {
		return "", "", err
	}
	if p[3] != "tenant" || p[4] != "unlinked" {
		return "", "", fmt.Errorf("%w: %q is not a tenant.unlinked subject", ErrInvalidSubject, s)
	}
	if err := ValidateToken("vendor", p[1]); err != nil {
		return "", "", wrapSubject(s, err)
	}
	if err := ValidateTenant(p[2]); err != nil {
		return "", "", wrapSubject(s, err)
	}
	return p[1], p[2], nil
}
