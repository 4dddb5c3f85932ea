package natsauth

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Write writes the users list of a nats-server account: the users given as
// others first, in their order (the stages, the operator), then one user per
// vendor, ordered by name, each with VendorPermissions. The output is the
// account's "users" key, to be included inside the account's block:
//
//	accounts {
//	  SKOLEBUSS {
//	    jetstream: enabled
//	    include ./users.conf
//	  }
//	}
//
// nats-server's include reads a file into the map it stands in, and a key
// given twice keeps the later value; so one file holds the whole list, and
// the account's other users are given to Write rather than written beside
// it. Passwords are written as $VARIABLE references or bcrypt hashes, never
// in plain. Nothing is written when a vendor or a user is invalid (ErrInvalid).
func Write(w io.Writer, vendors []Vendor, others ...User) error {
	if err := validateVendors(vendors); err != nil {
		return err
	}
	names := make(map[string]bool)
	for _, u := range others {
		if err := validateUser(u); err != nil {
			return err
		}
		if names[u.Name] {
			return fmt.Errorf("%w: user %q is given twice", ErrInvalid, u.Name)
		}
		names[u.Name] = true
	}
	users := others
	for _, v := range sortedVendors(vendors) {
		if names[UserName(v.Name)] {
			return fmt.Errorf("%w: vendor %s's user %q is also given as another user", ErrInvalid, v.Name, UserName(v.Name))
		}
		p := VendorPermissions(v.Name)
		users = append(users, User{
			Name:     UserName(v.Name),
			Password: v.Password,
			Comment: fmt.Sprintf("Vendor %s: its stream %s, its resync requests and its inbox %s.> only.",
				v.Name, StreamName(v.Name), InboxPrefix(v.Name)),
			Permissions: &p,
		})
	}

	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# The users of the account, written by `skolebuss vendors nats-config`;")
	fmt.Fprintln(bw, "# do not edit: change the configuration's vendors and write it again.")
	fmt.Fprintln(bw, "# A vendor's user may read its own stream VENDOR_<name> through consumers,")
	fmt.Fprintln(bw, "# request resyncs on vendorreq.<name>.resync.<tenant> and receive on its")
	fmt.Fprintln(bw, "# inbox _INBOX_<name>.>, and nothing else (see internal/natsauth).")
	fmt.Fprintln(bw, "users: [")
	for i, u := range users {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		writeUser(bw, u)
	}
	fmt.Fprintln(bw, "]")
	return bw.Flush()
}

func writeUser(w *bufio.Writer, u User) {
	fmt.Fprintln(w, "  {")
	for line := range strings.SplitSeq(strings.TrimSpace(u.Comment), "\n") {
		if line != "" {
			fmt.Fprintf(w, "    # %s\n", line)
		}
	}
	fmt.Fprintf(w, "    user: %q\n", u.Name)
	if u.Password.Env != "" {
		fmt.Fprintf(w, "    password: $%s\n", u.Password.Env)
	} else {
		fmt.Fprintf(w, "    password: %q\n", u.Password.Bcrypt)
	}
	if p := u.Permissions; p != nil {
		fmt.Fprintln(w, "    permissions {")
		writeRules(w, "publish", p.Publish)
		writeRules(w, "subscribe", p.Subscribe)
		if p.Responses {
			fmt.Fprintln(w, "      allow_responses: true")
		}
		fmt.Fprintln(w, "    }")
	}
	fmt.Fprintln(w, "  }")
}

func writeRules(w *bufio.Writer, direction string, r Rules) {
	if len(r.Allow) == 0 && len(r.Deny) == 0 {
		return
	}
	fmt.Fprintf(w, "      %s {\n", direction)
	for _, l := range []struct {
		key      string
		subjects []string
	}{{"allow", r.Allow}, {"deny", r.Deny}} {
		if len(l.subjects) == 0 {
			continue
		}
		fmt.Fprintf(w, "        %s: [\n", l.key)
		for _, s := range l.subjects {
			fmt.Fprintf(w, "          %q\n", s)
		}
		fmt.Fprintln(w, "        ]")
	}
	fmt.Fprintln(w, "      }")
}

// validateUser checks what Write writes of u: a name and subjects that
// stand in a quoted string as they are, and its password source.
func validateUser(u User) error {
	if !plain(u.Name) {
		return fmt.Errorf("%w user name %q: empty, or white space, a quote, a backslash or a control character", ErrInvalid, u.Name)
	}
	if err := u.Password.Validate(); err != nil {
		return fmt.Errorf("user %s: %w", u.Name, err)
	}
	if p := u.Permissions; p != nil {
		for _, list := range [][]string{p.Publish.Allow, p.Publish.Deny, p.Subscribe.Allow, p.Subscribe.Deny} {
			for _, s := range list {
				if !plain(s) {
					return fmt.Errorf("%w user %s: subject %q is empty or has white space, a quote, a backslash or a control character", ErrInvalid, u.Name, s)
				}
			}
		}
	}
	return nil
}

// plain reports whether s is not empty and is printable ASCII without white
// space, quotes or backslashes.
func plain(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '\\' {
			return false
		}
	}
	return true
}
