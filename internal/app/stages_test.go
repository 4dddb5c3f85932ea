package app

import (
	"context"
	"testing"
	"time"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/config"
)

// The fan-out is built from the configuration's vendors, with their
// streams provisioned, and runs until its context ends.
func TestNewFanout(t *testing.T) {
	b := bustest.Open(t)
	ctx := context.Background()
	f, err := NewFanout(ctx, Runtime{Config: config.Demo(), Bus: b}, StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{config.DemoVendorContact, config.DemoVendorRoster} {
		s, err := b.JS.Stream(ctx, bus.VendorStream(v))
		if err != nil {
			t.Fatalf("stream of %s: %v", v, err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.Config.Subjects[0] != "vendor."+v+".>" {
			t.Errorf("stream of %s: %+v %v", v, info, err)
		}
	}
	run, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(run) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}
