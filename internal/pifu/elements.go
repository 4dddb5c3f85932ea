package pifu

// elem identifies the element local names this package understands.
type elem uint8

const (
	eNone elem = iota
	eUnknown
	eEnterprise
	eProperties
	eComments
	eDatasource
	eTarget
	eType
	eDatetime
	eExtension
	ePerson
	eSourcedid
	eSource
	eID
	eUserid
	eName
	eFn
	eN
	eFamily
	eGiven
	eDemographics
	eGender
	eBday
	eEmail
	eURL
	eTel
	eAdr
	ePobox
	eExtadd
	eStreet
	eLocality
	eRegion
	ePcode
	eCountry
	ePhoto
	eExtref
	eGroup
	eGrouptype
	eScheme
	eTypevalue
	eDescription
	eShort
	eLong
	eFull
	eTimeframe
	eBegin
	eEnd
	eAdminperiod
	eRelationship
	eLabel
	eMembership
	eMember
	eIDType
	eRole
	eSubrole
	eStatus
	ePifuID
	ePifuValue
	ePifuScope
	ePifuUnique
	ePifuName
	ePifuLanguage
	ePifuEmail
	ePifuURL
	ePifuTel
	ePifuAdr
	ePifuStatus
	ePifuPreferredLanguage
	ePifuHasContactPerson
	ePifuPrimaryRelation
	ePifuSchoolType
	numElems
)

// lookup maps a local name to its elem (a switch on string(b) does not
// allocate).
func lookup(b []byte) elem {
	switch string(b) {
	case "enterprise":
		return eEnterprise
	case "properties":
		return eProperties
	case "comments":
		return eComments
	case "datasource":
		return eDatasource
	case "target":
		return eTarget
	case "type":
		return eType
	case "datetime":
		return eDatetime
	case "extension":
		return eExtension
	case "person":
		return ePerson
	case "sourcedid":
		return eSourcedid
	case "source":
		return eSource
	case "id":
		return eID
	case "userid":
		return eUserid
	case "name":
		return eName
	case "fn":
		return eFn
	case "n":
		return eN
	case "family":
		return eFamily
	case "given":
		return eGiven
	case "demographics":
		return eDemographics
	case "gender":
		return eGender
	case "bday":
		return eBday
	case "email":
		return eEmail
	case "url":
		return eURL
	case "tel":
		return eTel
	case "adr":
		return eAdr
	case "pobox":
		return ePobox
	case "extadd":
		return eExtadd
	case "street":
		return eStreet
	case "locality":
		return eLocality
	case "region":
		return eRegion
	case "pcode":
		return ePcode
	case "country":
		return eCountry
	case "photo":
		return ePhoto
	case "extref":
		return eExtref
	case "group":
		return eGroup
	case "grouptype":
		return eGrouptype
	case "scheme":
		return eScheme
	case "typevalue":
		return eTypevalue
	case "description":
		return eDescription
	case "short":
		return eShort
	case "long":
		return eLong
	case "full":
		return eFull
	case "timeframe":
		return eTimeframe
	case "begin":
		return eBegin
	case "end":
		return eEnd
	case "adminperiod":
		return eAdminperiod
	case "relationship":
		return eRelationship
	case "label":
		return eLabel
	case "membership":
		return eMembership
	case "member":
		return eMember
	case "idtype":
		return eIDType
	case "role":
		return eRole
	case "subrole":
		return eSubrole
	case "status":
		return eStatus
	case "pifu_id":
		return ePifuID
	case "pifu_value":
		return ePifuValue
	case "pifu_scope":
		return ePifuScope
	case "pifu_unique":
		return ePifuUnique
	case "pifu_name":
		return ePifuName
	case "pifu_language":
		return ePifuLanguage
	case "pifu_email":
		return ePifuEmail
	case "pifu_url":
		return ePifuURL
	case "pifu_tel":
		return ePifuTel
	case "pifu_adr":
		return ePifuAdr
	case "pifu_status":
		return ePifuStatus
	case "pifu_preferredLanguage":
		return ePifuPreferredLanguage
	case "pifu_hasContactPerson":
		return ePifuHasContactPerson
	case "pifu_primaryRelation":
		return ePifuPrimaryRelation
	case "pifu_schoolType":
		return ePifuSchoolType
	}
	return eUnknown
}

// leaf marks the elements whose text is kept.
var leaf = func() (t [numElems]bool) {
	for _, e := range []elem{
		eComments, eDatasource, eTarget, eType, eDatetime, eSource, eID, eUserid, eFn, eFamily, eGiven,
		eGender, eBday, eEmail, eURL, eTel, ePobox, eExtadd, eStreet, eLocality, eRegion, ePcode, eCountry,
		eExtref, eScheme, eTypevalue, eShort, eLong, eFull, eBegin, eEnd, eAdminperiod, eLabel, eIDType,
		eSubrole, eStatus, ePifuValue, ePifuScope, ePifuUnique, ePifuLanguage, ePifuEmail, ePifuURL,
		ePifuTel, ePifuStatus, ePifuPreferredLanguage, ePifuPrimaryRelation, ePifuSchoolType,
	} {
		t[e] = true
	}
	return t
}()

// modelled reports whether an extension child of owner is modelled by a
// record field; every other extension child is kept as an Extension.
func modelled(owner, e elem) bool {
	switch owner {
	case ePerson:
		switch e {
		case ePifuID, ePifuName, ePifuEmail, ePifuURL, ePifuTel, ePifuAdr, ePifuStatus,
			ePifuPreferredLanguage, ePifuHasContactPerson:
			return true
		}
	case eGroup:
		switch e {
		case ePifuID, ePifuName, ePifuEmail, ePifuURL, ePifuTel, ePifuAdr, ePifuSchoolType:
			return true
		}
	case eRole:
		return e == ePifuPrimaryRelation
	}
	return false
}
