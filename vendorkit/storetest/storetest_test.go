package storetest_test

import (
	"testing"

	"github.com/skolebuss/skolebuss/vendorkit"
	"github.com/skolebuss/skolebuss/vendorkit/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) vendorkit.Store { return vendorkit.NewMemoryStore() })
}
