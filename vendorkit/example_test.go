package vendorkit_test

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/nats-io/nats.go"

	"github.com/skolebuss/skolebuss/vendorkit"
)

// A vendor's whole consumer: connect as its NATS user, and run the kit into
// a store. MemoryStore stands for the vendor's own Store (see
// examples/vendor-sqlite for one in SQLite).
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	nc, err := vendorkit.Connect("nats://127.0.0.1:4222", "acme",
		nats.UserInfo("vendor-acme", os.Getenv("ACME_NATS_PASSWORD")))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	kit, err := vendorkit.New(nc, vendorkit.NewMemoryStore(), vendorkit.Config{
		Vendor: "acme",
		OnExport: func(c vendorkit.ExportCheck) {
			log.Printf("tenant %s export %s: %d persons, differs: %q",
				c.Tenant, c.ExportID, c.Summary.Counts[vendorkit.EntityPerson], c.Mismatch)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := kit.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
