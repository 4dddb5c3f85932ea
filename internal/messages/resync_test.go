package messages

import (
	"errors"
	"strings"
	"testing"
)

func TestResyncRequestSubject(t *testing.T) {
	const tn0 = "aa750693-e3ea-441b-93fe-6a71a8371afa"
	s, err := ResyncRequestSubject("roster-only", tn0)
	if err != nil || s != "vendorreq.roster-only.resync."+tn0 {
		t.Fatalf("%q, %v", s, err)
	}
	v, tn, err := ParseResyncRequestSubject(s)
	if err != nil || v != "roster-only" || tn != tn0 {
		t.Fatalf("parse: %q %q %v", v, tn, err)
	}
	for _, bad := range []string{"vendorreq.roster-only.resync", "vendorreq.Roster.resync.t", "vendorreq.v.sync.t",
		"vendor.v.resync.t", "vendorreq.v.resync.*", "vendorreq.v.resync.t.x"} {
		if _, _, err := ParseResyncRequestSubject(bad); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, bad := range [][2]string{{"a.b", tn0}, {"v", "t.x"}, {"v", "*"}, {"V", tn0}, {"v", "aa750693"}} {
		if _, err := ResyncRequestSubject(bad[0], bad[1]); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseResyncRequest(t *testing.T) {
	for body, want := range map[string]string{"": "", " \n": "", `{}`: "", `{"reason":"lost a week"}`: "lost a week",
		`{"reason":"` + strings.Repeat("ø", 100) + `"}`: strings.Repeat("ø", 100)} {
		r, err := ParseResyncRequest([]byte(body))
		if err != nil || r.Reason != want {
			t.Errorf("%q: %+v, %v", body, r, err)
		}
	}
	for body, want := range map[string]string{
		`{"reason":"` + strings.Repeat("x", 201) + `"}`: "201 bytes long, at most 200",
		`{"reason":"` + strings.Repeat("ø", 101) + `"}`: "202 bytes long",
		"{\"reason\":\"\xff\"}":                         "not valid UTF-8",
		`{"vendor":"other"}`:                            `unknown field "vendor"`,
		`{"reason":1}`:                                  "not {",
		`{} {}`:                                         "more than one",
		`[`:                                             "not {",
	} {
		if _, err := ParseResyncRequest([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40q: %v, want %q", body, err, want)
		}
	}
}

func TestResyncReplyValidate(t *testing.T) {
	if err := (ResyncReply{Accepted: true, ResyncID: "x"}).Validate(); err != nil {
		t.Error(err)
	}
	if err := (ResyncReply{Error: "no"}).Validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []ResyncReply{{Accepted: true}, {}, {Accepted: true, ResyncID: "x", Error: "y"}, {ResyncID: "x", Error: "y"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
