//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// openPTY opens a pseudo-terminal: the command writes to the terminal side,
// the test reads what a user would see from the other side.
func openPTY(t *testing.T) (term, user *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal (/dev/ptmx), which this test needs: %v", err)
	}
	var unlock int32
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Fatalf("unlockpt: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Fatalf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open the terminal side: %v", err)
	}
	return s, m
}

// On a terminal, pifu fetch shows a progress bar of the bytes received,
// which it clears before its summary line.
func TestPifuFetchShowsProgressOnATerminal(t *testing.T) {
	term, user := openPTY(t)
	defer user.Close()
	var seen bytes.Buffer
	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.Copy(&seen, user) }()

	sb, base := startFetchSandbox(t)
	// A slow body, so that the fetch lasts long enough for the bar to draw.
	if err := sb.SetFaults(sandbox.DemoTenantFjordvik, sandbox.Faults{SlowBody: 150_000}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export.xml")
	var stdout bytes.Buffer
	err := pifuFetch(context.Background(), fetchArgs(base, "--tenant", sandbox.DemoTenantFjordvik, "-o", out)[2:], &stdout, term, os.Getenv)
	term.Close()
	<-done // the other side reads until the terminal side is closed
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	screen := seen.String()
	if !strings.Contains(screen, "fetching "+sandbox.DemoTenantFjordvik) || !strings.Contains(screen, "\r") {
		t.Fatalf("no progress bar on the terminal:\n%q", screen)
	}
	if !regexp.MustCompile(`[0-9.]+ [kM]B`).MatchString(screen) {
		t.Errorf("the bar shows no byte count:\n%q", screen)
	}
	if !strings.Contains(screen, fmt.Sprintf("fetched %d bytes", fi.Size())) {
		t.Errorf("no summary line for %d bytes:\n%q", fi.Size(), screen)
	}
}
