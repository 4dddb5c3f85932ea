package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/skolebuss/skolebuss/vendorkit"
	"github.com/skolebuss/skolebuss/vendorkit/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) vendorkit.Store {
		s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
