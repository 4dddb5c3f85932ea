package diff

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepSpool: spool directories left behind (a publisher killed midway)
// are removed once nothing in them has been written for the age; a recent
// one, and anything not a spool directory, stays.
func TestSweepSpool(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, age time.Duration) string {
		t.Helper()
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "person")
		if err := os.WriteFile(f, []byte("c\x00..."), 0o600); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-age)
		for _, p := range []string{f, dir} {
			if err := os.Chtimes(p, at, at); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	old := mk(spoolPrefix+"111", 3*time.Hour)
	recent := mk(spoolPrefix+"222", time.Minute)
	other := mk("not-ours", 3*time.Hour)
	// An old directory with a file written just now is in use.
	busy := mk(spoolPrefix+"333", 3*time.Hour)
	if err := os.WriteFile(filepath.Join(busy, "membership"), []byte("c"), 0o600); err != nil {
		t.Fatal(err)
	}

	n, err := SweepSpool(parent, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("SweepSpool: %d removed, %v; want 1", n, err)
	}
	for dir, want := range map[string]bool{old: false, recent: true, other: true, busy: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	if _, err := SweepSpool(filepath.Join(parent, "missing"), time.Hour); err == nil {
		t.Error("a missing spool directory gave no error")
	}
}
