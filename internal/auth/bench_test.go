package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkTokenCached measures a cache hit, the cost every export request
// pays, with all CPUs asking at once.
func BenchmarkTokenCached(b *testing.B) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"x","expires_in":3600}`)
	}))
	defer ts.Close()
	s, err := New(Config{TokenURL: ts.URL, Applications: []Application{{Name: "a", ClientID: "c", ClientSecret: "s"}}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	key := Key{"a", "t"}
	if _, err := s.Token(context.Background(), key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(context.Background(), key); err != nil {
				b.Fatal(err)
			}
		}
	})
}
