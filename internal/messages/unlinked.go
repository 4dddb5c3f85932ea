package messages

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TypeTenantUnlinked is the ce-type of TenantUnlinked.
const TypeTenantUnlinked = typePrefix + "tenant.unlinked.v1"

// TenantUnlinked says that tenant no longer flows to vendor: nothing more
// of the tenant follows on the vendor's stream, and the vendor drops its
// copy. It is published once on vendor.<vendor>.<tenant>.tenant.unlinked,
// by the fan-out when the configuration stops linking the tenant to the
// vendor.
type TenantUnlinked struct {
	// ID is the ce-id and Nats-Msg-Id (UnlinkedID).
	ID     string
	Vendor string
	Tenant string
	// Time is when the fan-out stopped the tenant's flow.
	Time time.Time
}

// UnlinkedID is the deterministic id of the TenantUnlinked event that ends
// the flow of tenant to vendor after the export lastExportID (the last one
// the vendor received of it; empty if none): a redo publishes the same id,
// which the vendor's stream stores once, and an unlinking after a later
// link is a new event.
func UnlinkedID(vendor, tenant, lastExportID string) string {
	sum := sha256.Sum256([]byte("tenant.unlinked\x00" + vendor + "\x00" + tenant + "\x00" + lastExportID))
	return hex.EncodeToString(sum[:16])
}

// Validate reports the first missing or malformed field.
func (u TenantUnlinked) Validate() error {
	switch {
	case u.ID == "":
		return errors.New("tenant.unlinked: id is empty")
	case u.Time.IsZero():
		return fmt.Errorf("tenant.unlinked %s: time is zero", u.ID)
	}
	if err := ValidateVendor(u.Vendor); err != nil {
		return fmt.Errorf("tenant.unlinked %s: %w", u.ID, err)
	}
	if err := ValidateTenant(u.Tenant); err != nil {
		return fmt.Errorf("tenant.unlinked %s: %w", u.ID, err)
	}
	return nil
}

type unlinkedBody struct {
	Vendor string    `json:"vendor"`
	Tenant string    `json:"tenant"`
	Time   time.Time `json:"time"`
}

func (u TenantUnlinked) envelope() (envelope, error) {
	if err := u.Validate(); err != nil {
		return envelope{}, err
	}
	subj, _ := VendorUnlinkedSubject(u.Vendor, u.Tenant)
	data, err := json.Marshal(unlinkedBody{Vendor: u.Vendor, Tenant: u.Tenant, Time: u.Time.UTC()})
	if err != nil {
		return envelope{}, err
	}
	return envelope{subject: subj, ceType: TypeTenantUnlinked, id: u.ID, source: tenantSource(u.Tenant),
		ceSubject: u.Tenant, dataSchema: SchemaURI(TypeTenantUnlinked), time: u.Time, msgID: u.ID, data: data}, nil
}

func (u *TenantUnlinked) decode(t string, h getter, data []byte) error {
	if t != TypeTenantUnlinked {
		return unexpected(TypeTenantUnlinked, t)
	}
	var body unlinkedBody
	if err := decodeJSON(t, data, &body); err != nil {
		return err
	}
	*u = TenantUnlinked{ID: h.Get(HeaderID), Vendor: body.Vendor, Tenant: body.Tenant, Time: body.Time}
	if err := u.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}
