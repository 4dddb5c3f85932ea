// Package rostergen generates the PIFU-IMS 1.3 "full" export of a simulated
// Norwegian municipality: a school owner, its schools, grade levels, classes,
// teaching and contact-teacher groups, pupils with their guardians, staff in
// several roles, and the memberships that tie them together.
//
// The export is deterministic: the document at generation N is a pure
// function of the Spec (seed, sizes, churn) and N. Between consecutive
// generations the municipality changes like a school year does: pupils join
// and leave, change class, staff change groups, names, e-mail addresses and
// phone numbers change, and teaching groups end and are replaced.
//
// The export is streamed as it is written; a large municipality (about
// 270 MB of XML) is written with a few MiB of heap.
package rostergen

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// DefaultChurn is the share of pupils touched per generation when Spec.Churn
// is zero.
const DefaultChurn = 0.02

// MaxGeneration is the highest generation an export can be written for. One
// generation stands for one hour of simulated time (see WriteExport).
const MaxGeneration = 10_000_000

// Limits on Sizes, to keep identities in 32 bits and the work bounded.
const (
	MaxSchools = 10_000
	MaxPupils  = 5_000_000
	MaxStaff   = 1_000_000
)

// ErrUnknownPreset is returned (wrapped) by Preset for a name it does not know.
var ErrUnknownPreset = errors.New("unknown municipality size preset")

// ErrGeneration is returned (wrapped) by WriteExport for a generation above
// MaxGeneration.
var ErrGeneration = errors.New("generation out of range")

// Sizes sets how big a municipality is; groups, guardians and memberships
// follow from them.
type Sizes struct {
	Schools int `json:"schools" yaml:"schools"`
	Pupils  int `json:"pupils" yaml:"pupils"`
	Staff   int `json:"staff" yaml:"staff"`
}

// Presets lists the names Preset knows, smallest first.
var Presets = []string{"tiny", "small", "medium", "large"}

// Preset returns the sizes of a named municipality:
//
//	tiny    1 school, 12 pupils, 4 staff (a handful of records)
//	small   2 schools, 300 pupils, 36 staff
//	medium  10 schools, 3,000 pupils, 320 staff
//	large   120 schools, 60,000 pupils, 6,000 staff (about 100,000
//	        guardians, 20,000 groups, 600,000 membership records and
//	        270 MB of XML)
//
// An unknown name is an error that names it and wraps ErrUnknownPreset.
func Preset(name string) (Sizes, error) {
	switch name {
	case "tiny":
		return Sizes{Schools: 1, Pupils: 12, Staff: 4}, nil
	case "small":
		return Sizes{Schools: 2, Pupils: 300, Staff: 36}, nil
	case "medium":
		return Sizes{Schools: 10, Pupils: 3000, Staff: 320}, nil
	case "large":
		return Sizes{Schools: 120, Pupils: 60000, Staff: 6000}, nil
	}
	return Sizes{}, fmt.Errorf("size %q: %w (known: %s)", name, ErrUnknownPreset, strings.Join(Presets, ", "))
}

// Validate reports the first size that is out of range.
func (s Sizes) Validate() error {
	switch {
	case s.Schools < 1 || s.Schools > MaxSchools:
		return fmt.Errorf("sizes.schools = %d: must be between 1 and %d", s.Schools, MaxSchools)
	case s.Pupils < s.Schools || s.Pupils > MaxPupils:
		return fmt.Errorf("sizes.pupils = %d: must be at least the number of schools (%d) and at most %d", s.Pupils, s.Schools, MaxPupils)
	case s.Staff < 2*s.Schools || s.Staff > MaxStaff:
		return fmt.Errorf("sizes.staff = %d: must be at least two per school (%d) and at most %d", s.Staff, 2*s.Schools, MaxStaff)
	}
	return nil
}

// Spec describes one simulated municipality.
type Spec struct {
	TenantID string // the tenant GUID; required, not written into the export
	Name     string // "Fjordvik kommune": the school owner's name, at most 60 characters
	Seed     uint64
	Sizes    Sizes
	// Churn is the share of pupils touched per generation (join, leave,
	// change class, change name or contact data). Zero means DefaultChurn;
	// otherwise 0 < Churn <= 1.
	Churn float64
}

// Validate reports the first field of the spec that is wrong, by name.
func (s Spec) Validate() error {
	if strings.TrimSpace(s.TenantID) == "" {
		return errors.New("spec.tenant_id: must not be empty")
	}
	if err := validName(s.Name); err != nil {
		return fmt.Errorf("spec.name %q: %w", s.Name, err)
	}
	if err := s.Sizes.Validate(); err != nil {
		return fmt.Errorf("spec.%w", err)
	}
	if math.IsNaN(s.Churn) || s.Churn < 0 || s.Churn > 1 {
		return fmt.Errorf("spec.churn = %v: must be 0 (the default, %v) or in (0, 1]", s.Churn, DefaultChurn)
	}
	return nil
}

func validName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("must not be empty")
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8")
	case utf8.RuneCountInString(name) > 60:
		return errors.New("must be at most 60 characters (the PIFU description/short limit)")
	}
	for _, r := range name {
		if r < 0x20 || r == 0xFFFE || r == 0xFFFF {
			return fmt.Errorf("contains the character %U, which XML 1.0 does not allow", r)
		}
	}
	if slugOf(name) == "" {
		return errors.New("must contain at least one letter or digit")
	}
	return nil
}

func (s Spec) churn() float64 {
	if s.Churn == 0 {
		return DefaultChurn
	}
	return s.Churn
}

// Stats counts what an export holds, as a parser would count it.
type Stats struct {
	Persons   int `json:"persons"`   // Pupils + Staff + Guardians
	Pupils    int `json:"pupils"`    //
	Staff     int `json:"staff"`     //
	Guardians int `json:"guardians"` //
	// Orgs counts the groups of scheme pifu-ims-go-org: the school owner and
	// the schools.
	Orgs int `json:"orgs"`
	// Groups counts every other group: grade levels, classes, contact-teacher
	// and teaching groups.
	Groups int `json:"groups"`
	// Memberships counts membership records: one per group + member +
	// roletype.
	Memberships int `json:"memberships"`
}
