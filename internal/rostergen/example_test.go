package rostergen_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/skolebuss/skolebuss/internal/rostergen"
)

func Example() {
	sizes, err := rostergen.Preset("tiny")
	if err != nil {
		log.Fatal(err)
	}
	m, err := rostergen.New(rostergen.Spec{
		TenantID: "3f1c2a9e-6b7d-4e2f-9a41-0c5d8e7f6a01",
		Name:     "Fjordvik kommune",
		Seed:     1,
		Sizes:    sizes,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Stream generation 0 (a real server writes to the HTTP response).
	if _, err := m.WriteExport(context.Background(), io.Discard, 0); err != nil {
		log.Fatal(err)
	}
	s := m.Stats(0)
	fmt.Println(m.Source())
	fmt.Printf("pupils %d, staff %d, orgs %d, groups %d\n", s.Pupils, s.Staff, s.Orgs, s.Groups)
	// Output:
	// vfs@fjordvik.kommune.no
	// pupils 12, staff 4, orgs 2, groups 18
}
