package publisher_test

import (
	"testing"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// export.started tells vendors what the upstream announced with the export
// (its API version, a deprecation, a sunset), and says nothing when it
// announced nothing; export.completed never carries it.
func TestStartedCarriesTheUpstreamsAnnouncements(t *testing.T) {
	e := newEnv(t, "tiny")
	fe, _ := e.export(0)
	fe.APIVersion, fe.Deprecation, fe.Sunset = "1.4", "@1798761600", "Sat, 01 May 2027 00:00:00 GMT"
	e.process(fe)
	started, completed, _ := changes(t, readLMS(t, e.bus.JS, 1), fe.ExportID)
	want := messages.Upstream{APIVersion: "1.4", Deprecation: "@1798761600", Sunset: "Sat, 01 May 2027 00:00:00 GMT"}
	if started.Upstream == nil || *started.Upstream != want {
		t.Errorf("export.started upstream %+v, want %+v", started.Upstream, want)
	}
	if completed.Upstream != nil {
		t.Errorf("export.completed carries the upstream %+v", completed.Upstream)
	}

	fe2, _ := e.export(1)
	e.process(fe2)
	started2, _, _ := changes(t, readLMS(t, e.bus.JS, 1), fe2.ExportID)
	if started2.Upstream != nil {
		t.Errorf("an export with nothing announced: export.started upstream %+v", started2.Upstream)
	}
}
