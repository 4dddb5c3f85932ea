package demo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/config"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

// While the demo runs it prints each application's quota use as the
// fetchers count it, when it changes.
func TestDemoShowsQuotaUse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out waitfor.Buffer
	p, err := start(ctx, Options{SandboxAddr: "127.0.0.1:0", NATSPort: -1, CredentialsDir: t.TempDir(), Out: &out,
		Getenv: func(string) string { return "" }}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.progress.loop(lctx) }()
	defer func() { stop(); <-done }()

	want := fmt.Sprintf("quota %s: daily 0/", config.DemoApplication)
	waitfor.Condition(t, 10*time.Second, func() error {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("no %q in:\n%s", want, out.String())
		}
		return nil
	})
	if _, err := p.req.RequestNow(ctx, p.cfg.Tenants[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("quota %s: daily 1/", config.DemoApplication)
	waitfor.Condition(t, 30*time.Second, func() error {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("no %q in:\n%s", want, out.String())
		}
		return nil
	})
}
