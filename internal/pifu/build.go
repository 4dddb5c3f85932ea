package pifu

import "strings"

// builder holds the record being built and the parts it is built from.
// Elements are dispatched on their own elem and their parent's (and
// sometimes grandparent's), so an element in a place the format does not put
// it is ignored rather than misread.
type builder struct {
	person *Person
	group  *Group
	sids   []SourcedID // sourcedids of the current person or group
	line   int         // start of the current person or group
	column int

	sid   SourcedID
	typed Typed
	adr   Address
	padr  Address
	tf    Timeframe
	gt    GroupType
	rel   Relationship
	extid ExtID
	pname Typed
	link  ContactLink

	// membership
	mGroup    SourcedID
	mGroupSet bool
	member    SourcedID
	idtype    string
	role      Membership
	roleLine  int
	roleCol   int
	waiting   []Record // roles seen before the membership's group sourcedid
}

// open handles a start tag; the element is already on the stack.
func (d *Decoder) open(id elem) error {
	b := &d.b
	s := &d.s
	p := d.up(1)
	switch id {
	case eProperties:
		if p == eEnterprise {
			d.props.Lang = d.attrInterned("lang")
		}
	case ePerson:
		if p == eEnterprise {
			b.person = &Person{RecStatus: d.attrInterned("recstatus")}
			b.sids = b.sids[:0]
			b.line, b.column = s.pos(s.start)
		}
	case eGroup:
		if p == eEnterprise {
			b.group = &Group{RecStatus: d.attrInterned("recstatus")}
			b.sids = b.sids[:0]
			b.line, b.column = s.pos(s.start)
		}
	case eMembership:
		if p == eEnterprise {
			b.mGroup, b.mGroupSet = SourcedID{}, false
			b.waiting = b.waiting[:0]
		}
	case eSourcedid:
		b.sid = SourcedID{Type: d.attrInterned("sourcedidtype")}
	case eUserid:
		b.typed = Typed{Type: d.attrInterned("useridtype")}
	case eTel:
		b.typed = Typed{Type: d.attrInterned("teltype")}
	case ePifuEmail, ePifuURL, ePifuTel, ePifuStatus:
		b.typed = Typed{Type: d.attrInterned("type"), Priority: d.attrInterned("priority")}
	case eAdr:
		b.adr = Address{}
	case ePifuAdr:
		b.padr = Address{Type: d.attrInterned("type")}
	case eTimeframe:
		b.tf = Timeframe{}
	case eGrouptype:
		b.gt = GroupType{}
	case eTypevalue:
		b.gt.Level = d.attrInterned("level")
	case eRelationship:
		b.rel = Relationship{Relation: d.attrInterned("relation")}
	case ePifuID:
		b.extid = ExtID{Type: d.attrInterned("type")}
	case ePifuName:
		b.pname = Typed{Type: d.attrInterned("type")}
	case ePifuHasContactPerson:
		b.link = ContactLink{Type: d.attrInterned("type")}
	case eMember:
		b.member, b.idtype = SourcedID{}, ""
	case eRole:
		b.role = Membership{RoleType: d.attrInterned("roletype"), RecStatus: d.attrInterned("recstatus")}
		b.roleLine, b.roleCol = s.pos(s.start)
	}
	if p == eExtension && !modelled(d.up(2), id) {
		d.startCapture()
	}
	return nil
}

// closeElem handles the end of an element (still on the stack) outside a
// capture.
func (d *Decoder) closeElem(id elem) error {
	b := &d.b
	p, g := d.up(1), d.up(2)
	per, grp := b.person, b.group
	switch id {
	case eSource:
		if p == eSourcedid {
			b.sid.Source = d.intern(d.val())
		}
	case eID:
		if p == eSourcedid {
			b.sid.ID = d.str(d.val())
		}
	case eSourcedid:
		switch p {
		case ePerson, eGroup:
			b.sids = append(b.sids, b.sid)
		case eRelationship:
			b.rel.Target = b.sid
		case eMembership:
			d.setMembershipGroup(b.sid)
		case eMember:
			b.member = b.sid
		case ePifuHasContactPerson:
			b.link.Person = b.sid
		}
	case eUserid:
		if p == ePerson && per != nil {
			b.typed.Value = d.str(d.val())
			per.UserIDs = append(per.UserIDs, b.typed)
		}
	case eFn, eFamily, eGiven:
		if per == nil || g != ePerson && id == eFn || id != eFn && d.up(3) != ePerson {
			break
		}
		switch {
		case id == eFn && p == eName:
			per.Name.Formatted = d.str(d.val())
		case id == eFamily && p == eN:
			per.Name.Family = d.str(d.val())
		case id == eGiven && p == eN:
			per.Name.Given = d.str(d.val())
		}
	case eGender:
		if p == eDemographics && per != nil {
			per.Gender = d.intern(d.val())
		}
	case eBday:
		if p == eDemographics && per != nil {
			per.Birthday = d.intern(d.val())
		}
	case eEmail:
		if p == ePerson && per != nil {
			per.Email = d.str(d.val())
		} else if p == eGroup && grp != nil {
			grp.Email = d.str(d.val())
		}
	case eURL:
		if p == ePerson && per != nil {
			per.URL = d.str(d.val())
		} else if p == eGroup && grp != nil {
			grp.URL = d.str(d.val())
		}
	case eTel:
		if p == ePerson && per != nil {
			b.typed.Value = d.str(d.val())
			per.Tel = append(per.Tel, b.typed)
		}
	case ePobox, eExtadd, eStreet, eLocality, eRegion, ePcode, eCountry:
		if p == eAdr {
			d.adrField(id)
		}
	case eAdr:
		switch {
		case p == ePerson && per != nil:
			per.Addresses = append(per.Addresses, b.adr)
		case p == ePifuAdr:
			typ := b.padr.Type
			b.padr = b.adr
			b.padr.Type = typ
		}
	case ePifuAdr:
		if p == eExtension {
			if g == ePerson && per != nil {
				per.Addresses = append(per.Addresses, b.padr)
			} else if g == eGroup && grp != nil {
				grp.Addresses = append(grp.Addresses, b.padr)
			}
		}
	case eExtref:
		if p == ePhoto && g == ePerson && per != nil {
			per.PhotoURL = d.str(d.val())
		}
	case eBegin:
		if p == eTimeframe {
			b.tf.Begin = d.intern(d.val())
		}
	case eEnd:
		if p == eTimeframe {
			b.tf.End = d.intern(d.val())
		}
	case eAdminperiod:
		if p == eTimeframe {
			b.tf.AdminPeriod = d.intern(d.val())
		}
	case eTimeframe:
		tf := b.tf
		switch {
		case p == eGroup && grp != nil:
			grp.Timeframe = &tf
		case p == eRole:
			b.role.Timeframe = &tf
		case p == ePifuAdr:
			b.padr.Timeframe = &tf
		}
	case eScheme:
		if p == eGrouptype {
			b.gt.Scheme = d.intern(d.val())
		}
	case eTypevalue:
		if p == eGrouptype {
			b.gt.Value = d.intern(d.val())
		}
	case eGrouptype:
		if p == eGroup && grp != nil {
			grp.Types = append(grp.Types, b.gt)
		}
	case eShort, eLong, eFull:
		if p == eDescription && g == eGroup && grp != nil {
			v := d.str(d.val())
			switch id {
			case eShort:
				grp.Short = v
			case eLong:
				grp.Long = v
			default:
				grp.Full = v
			}
		}
	case eLabel:
		if p == eRelationship {
			b.rel.Label = d.intern(d.val())
		}
	case eRelationship:
		if p == eGroup && grp != nil {
			grp.Relationships = append(grp.Relationships, b.rel)
		}
	case ePifuValue:
		if p == ePifuID {
			b.extid.Value = d.str(d.val())
		} else if p == ePifuName {
			b.pname.Value = d.str(d.val())
		}
	case ePifuScope:
		if p == ePifuID {
			b.extid.Scope = d.intern(d.val())
		}
	case ePifuUnique:
		if p == ePifuID {
			b.extid.Unique = d.intern(d.val())
		}
	case ePifuLanguage:
		if p == ePifuName {
			b.pname.Lang = d.intern(d.val())
		}
	case ePifuID:
		if p != eExtension {
			break
		}
		if g == eGroup && grp != nil {
			grp.IDs = append(grp.IDs, b.extid)
		} else if g == ePerson && per != nil {
			per.Extensions = append(per.Extensions, Extension{Name: "pifu_id", Type: b.extid.Type, Value: b.extid.Value})
		}
	case ePifuName:
		if p != eExtension {
			break
		}
		if g == eGroup && grp != nil {
			grp.Names = append(grp.Names, b.pname)
		} else if g == ePerson && per != nil {
			per.Extensions = append(per.Extensions, Extension{Name: "pifu_name", Type: b.pname.Type, Value: b.pname.Value})
		}
	case ePifuEmail, ePifuURL, ePifuTel, ePifuStatus:
		if p == eExtension {
			d.typedExt(id, g)
		}
	case ePifuPreferredLanguage:
		if p == eExtension && g == ePerson && per != nil {
			per.Language = d.intern(d.val())
		}
	case ePifuHasContactPerson:
		if p == eExtension && g == ePerson && per != nil {
			per.ContactPersons = append(per.ContactPersons, b.link)
		}
	case ePifuSchoolType:
		if p == eExtension && g == eGroup && grp != nil {
			grp.SchoolTypes = append(grp.SchoolTypes, d.intern(d.val()))
		}
	case ePifuPrimaryRelation:
		if p == eExtension && g == eRole {
			b.role.Primary = d.intern(d.val())
		}
	case eIDType:
		if p == eMember {
			b.idtype = d.intern(d.val())
		}
	case eSubrole:
		if p == eRole {
			b.role.Subrole = d.intern(d.val())
		}
	case eStatus:
		if p == eRole {
			b.role.Status = d.intern(d.val())
		}
	case eRole:
		if p == eMember {
			d.finishRole()
		}
	case eMembership:
		if p == eEnterprise {
			for _, r := range b.waiting {
				d.record(r)
			}
			b.waiting = b.waiting[:0]
		}
	case ePerson:
		if p == eEnterprise && per != nil {
			per.SourcedID, per.OtherIDs = pickKey(b.sids)
			d.record(Record{Person: per, Line: b.line, Column: b.column})
			b.person = nil
		}
	case eGroup:
		if p == eEnterprise && grp != nil {
			grp.SourcedID, grp.OtherIDs = pickKey(b.sids)
			d.record(Record{Group: grp, Line: b.line, Column: b.column})
			b.group = nil
		}
	case eDatasource, eTarget, eType, eDatetime, eComments:
		d.propField(id, p)
	}
	return nil
}

func (d *Decoder) adrField(id elem) {
	a := &d.b.adr
	switch id {
	case ePobox:
		a.POBox = d.str(d.val())
	case eExtadd:
		a.ExtAdd = d.str(d.val())
	case eStreet:
		a.Street = append(a.Street, d.str(d.val()))
	case eLocality:
		a.Locality = d.intern(d.val())
	case eRegion:
		a.Region = d.intern(d.val())
	case ePcode:
		a.PCode = d.intern(d.val())
	case eCountry:
		a.Country = d.intern(d.val())
	}
}

// typedExt files a pifu_email, pifu_url, pifu_tel or pifu_status of owner.
func (d *Decoder) typedExt(id, owner elem) {
	b := &d.b
	t := b.typed
	if id == ePifuStatus {
		t.Value = d.intern(d.val())
	} else {
		t.Value = d.str(d.val())
	}
	if owner == ePerson && b.person != nil {
		p := b.person
		switch id {
		case ePifuEmail:
			p.Emails = append(p.Emails, t)
		case ePifuURL:
			p.URLs = append(p.URLs, t)
		case ePifuTel:
			p.Phones = append(p.Phones, t)
		case ePifuStatus:
			p.Status = append(p.Status, t)
		}
	} else if owner == eGroup && b.group != nil {
		g := b.group
		switch id {
		case ePifuEmail:
			g.Emails = append(g.Emails, t)
		case ePifuURL:
			g.URLs = append(g.URLs, t)
		case ePifuTel:
			g.Phones = append(g.Phones, t)
		}
	}
}

func (d *Decoder) propField(id, p elem) {
	if p != eProperties || d.up(2) != eEnterprise {
		if id == eDatetime && p == eRole {
			d.b.role.DateTime = d.intern(d.val())
		}
		return
	}
	v := d.intern(d.val())
	switch id {
	case eDatasource:
		d.props.Datasource = v
	case eTarget:
		d.props.Targets = append(d.props.Targets, v)
	case eType:
		d.props.Type = v
	case eDatetime:
		d.props.Datetime = v
	case eComments:
		d.props.Comments = string(d.val())
	}
}

// addExtension files a captured extension with its owner.
func (b *builder) addExtension(owner elem, e Extension, props *Properties) {
	switch owner {
	case ePerson:
		if b.person != nil {
			b.person.Extensions = append(b.person.Extensions, e)
		}
	case eGroup:
		if b.group != nil {
			b.group.Extensions = append(b.group.Extensions, e)
		}
	case eRole:
		b.role.Extensions = append(b.role.Extensions, e)
	case eProperties:
		props.Extensions = append(props.Extensions, e)
	}
}

func (d *Decoder) setMembershipGroup(sid SourcedID) {
	b := &d.b
	b.mGroup, b.mGroupSet = sid, true
	for _, r := range b.waiting {
		r.Membership.Group = sid
		d.record(r)
	}
	b.waiting = b.waiting[:0]
}

// finishRole makes one Membership record of the role that just ended.
func (d *Decoder) finishRole() {
	b := &d.b
	m := new(Membership)
	*m = b.role
	m.Group, m.Member, m.IDType = b.mGroup, b.member, b.idtype
	r := Record{Membership: m, Line: b.roleLine, Column: b.roleCol}
	if b.mGroupSet {
		d.record(r)
	} else {
		b.waiting = append(b.waiting, r)
	}
}

// pickKey chooses the key among a record's sourcedids: the one typed New,
// else the first untyped one, else the first; the rest are returned apart.
func pickKey(sids []SourcedID) (SourcedID, []SourcedID) {
	if len(sids) == 0 {
		return SourcedID{}, nil
	}
	k := -1
	for i, s := range sids {
		if strings.EqualFold(s.Type, "New") {
			k = i
			break
		}
		if s.Type == "" && k < 0 {
			k = i
		}
	}
	if k < 0 {
		k = 0
	}
	if len(sids) == 1 {
		return sids[0], nil
	}
	others := make([]SourcedID, 0, len(sids)-1)
	others = append(others, sids[:k]...)
	others = append(others, sids[k+1:]...)
	return sids[k], others
}
