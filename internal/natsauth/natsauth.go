// Package natsauth writes the NATS users of skolebuss's LMS vendors: one user
// per vendor whose publish and subscribe permissions let it read its own
// stream, VENDOR_<name>, and ask for its own resyncs, and nothing else. The
// NATS server enforces them: a vendor is refused another vendor's events, the
// canonical LMS stream, the jobs, the exports, the dead letters, the alerts
// and the stores, whether it subscribes, makes a consumer, gets a message
// directly or asks for a stream's info.
//
// Write renders the users as the users list of a nats-server account, the
// form nats-server's configuration files take; Permissions is the same set
// as data.
package natsauth

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
)

// ErrInvalid is wrapped by every error about a vendor or a user that cannot
// be written.
var ErrInvalid = errors.New("natsauth: invalid")

// Vendor is one vendor's NATS user, as Write takes it.
type Vendor struct {
	// Name is the vendor's name: lowercase ASCII letters, digits, '-' and
	// '_', at most messages.MaxVendorLen bytes. Its stream is "VENDOR_"+Name on
	// "vendor.<Name>.>", its NATS user "vendor-"+Name.
	Name string
	// Password says where the server finds the user's password.
	Password Password
}

// Password says where the server finds a user's password. Exactly one field
// is set; a plain password is never written into a configuration.
type Password struct {
	// Env names the environment variable the server reads the password from
	// when it loads the configuration (written as $Env, as deploy/nats does
	// for the stages). It may hold the plain password or its bcrypt hash; a
	// variable that is not set stops the server from starting.
	Env string
	// Bcrypt is the password's bcrypt hash (`nats server passwd`), written
	// into the configuration as it is.
	Bcrypt string
}

// User is a NATS user Write writes beside the vendors' (a stage's, the
// operator's), with its permissions as given.
type User struct {
	Name     string
	Password Password
	// Comment is written above the user, one "#" line per line.
	Comment string
	// Permissions nil gives the user every right in its account.
	Permissions *Permissions
}

// Permissions are a user's publish and subscribe rights. A subject is
// allowed when an allow entry matches it and no deny entry does; an empty
// allow list allows every subject a deny entry does not match.
type Permissions struct {
	Publish   Rules
	Subscribe Rules
	// Responses lets the user publish one answer to the reply subject of
	// each request it receives, whatever the publish rules say
	// (nats-server's allow_responses): a responder answers on inboxes it
	// may not otherwise publish to.
	Responses bool
}

// Rules are the allow and deny lists of one direction.
type Rules struct {
	Allow []string
	Deny  []string
}

// StreamName is the name of vendor's stream.
func StreamName(vendor string) string { return bus.VendorStream(vendor) }

// UserName is the name of vendor's NATS user.
func UserName(vendor string) string { return "vendor-" + vendor }

// InboxPrefix is the inbox prefix vendor's clients must use
// (nats.CustomInboxPrefix): the only subjects it may subscribe to are below it.
func InboxPrefix(vendor string) string { return "_INBOX_" + vendor }

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// A bcrypt hash as nats-server recognises one: "$2a$", "$2b$" or "$2y$",
	// the cost, and 53 characters of salt and hash.
	bcryptHash = regexp.MustCompile(`^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$`)
)

// Validate reports whether p names exactly one well-formed source.
func (p Password) Validate() error {
	switch {
	case p.Env != "" && p.Bcrypt != "":
		return fmt.Errorf("%w password: both a variable and a bcrypt hash, give one", ErrInvalid)
	case p.Env != "":
		if !envName.MatchString(p.Env) {
			return fmt.Errorf("%w password variable %q: letters, digits and '_' only, not starting with a digit", ErrInvalid, p.Env)
		}
	case p.Bcrypt != "":
		if !bcryptHash.MatchString(p.Bcrypt) {
			return fmt.Errorf("%w password: the hash is not a bcrypt hash ($2a$, $2b$ or $2y$, cost, 53 characters)", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w password: neither a variable nor a bcrypt hash", ErrInvalid)
	}
	return nil
}

// VendorPermissions returns the rights of vendor's user; vendor must be a
// valid name. With S = VENDOR_<vendor> they are:
//
// Publish, allowed:
//   - $JS.API.INFO: the account's JetStream limits and usage (nats.go's
//     jetstream.AccountInfo; the kit's check that JetStream is there). It
//     shows counts of streams and consumers in the account, no names.
//   - $JS.API.STREAM.INFO.S: its own stream's configuration and state (first
//     and last sequence, counts, its own subjects), so a vendor can see how
//     far behind it is. Another stream's info is refused.
//   - $JS.API.CONSUMER.CREATE.S, .CREATE.S.>, .DURABLE.CREATE.S.*: make or
//     update a consumer on its own stream, ephemeral or durable, with or
//     without a filter (both request forms nats.go uses, and the legacy one).
//   - $JS.API.CONSUMER.INFO.S.*, .MSG.NEXT.S.*, .DELETE.S.*: its consumers'
//     state, pull requests, and removing a consumer it no longer needs.
//   - $JS.ACK.S.>: acks, naks and in-progress acks of its stream's messages.
//   - vendorreq.<vendor>.resync.*: its resync requests, one tenant a token.
//
// Publish, denied even where an allow above would match: every JetStream
// API call that changes a stream or reaches past the consumers, on any
// stream (stream create, update, delete, purge, message delete, snapshot,
// restore, leader step-down, consumer pause and unpin).
//
// The rights are rendered from vendorIdentity, the vendor's entry of
// Identities.
//
// Subscribe, allowed: <InboxPrefix>.> only, where the answers to its API
// calls, its pulled messages and its resync replies arrive. It may not read
// another inbox, nor any subject of a stream live.
//
// A consumer it makes may be a push consumer with any deliver subject: the
// server checks none against the vendor's permissions. What it delivers keeps
// its subjects in vendor.<vendor>.>, so no other stream stores it; a core
// subscriber on the deliver subject does receive it, so a responder (the
// resync requests') takes the vendor from the message's subject and refuses
// one it cannot parse.
//
// Not allowed, so refused by the server: stream lists and names (they would
// tell one vendor the others' names), direct and message gets (a consumer
// is the way to read), any subject of another stream, another vendor's or
// the stages' inboxes, and everything not listed.
func VendorPermissions(vendor string) Permissions {
	return *vendorIdentity(vendor).Permissions()
}

// validateVendors checks every vendor and that no two share a name.
func validateVendors(vendors []Vendor) error {
	seen := make(map[string]bool, len(vendors))
	for _, v := range vendors {
		if err := messages.ValidateVendor(v.Name); err != nil {
			err = fmt.Errorf("%w %w", ErrInvalid, err)
			return err
		}
		if seen[v.Name] {
			return fmt.Errorf("%w: vendor %q is given twice", ErrInvalid, v.Name)
		}
		seen[v.Name] = true
		if err := v.Password.Validate(); err != nil {
			return fmt.Errorf("vendor %s: %w", v.Name, err)
		}
	}
	return nil
}

// sortedVendors returns vendors ordered by name, so the file written does
// not depend on the configuration's order.
func sortedVendors(vendors []Vendor) []Vendor {
	out := slices.Clone(vendors)
	slices.SortFunc(out, func(a, b Vendor) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Server is p as nats-server's own type, for a server started in this
// process (the embedded one) rather than from a configuration file.
func (p Permissions) Server() *server.Permissions {
	sp := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: slices.Clone(p.Publish.Allow), Deny: slices.Clone(p.Publish.Deny)},
		Subscribe: &server.SubjectPermission{Allow: slices.Clone(p.Subscribe.Allow), Deny: slices.Clone(p.Subscribe.Deny)},
	}
	if p.Responses {
		// nats-server's defaults for allow_responses: true.
		sp.Response = &server.ResponsePermission{MaxMsgs: server.DEFAULT_ALLOW_RESPONSE_MAX_MSGS,
			Expires: server.DEFAULT_ALLOW_RESPONSE_EXPIRATION}
	}
	return sp
}
