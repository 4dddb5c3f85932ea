// Package authtest helps tests prove that no access token leaks: a token
// source that remembers every token it hands out, so a test can look for
// them in logs, spans, events and dead letters.
package authtest

import (
	"context"
	"sync"

	"github.com/skolebuss/skolebuss/internal/auth"
)

// Recorder is Source, remembering the access tokens it gave out.
type Recorder struct {
	Source *auth.Source

	mu   sync.Mutex
	seen []string
}

// Token is Source.Token; a token it returns is remembered.
func (r *Recorder) Token(ctx context.Context, key auth.Key) (auth.Token, error) {
	tok, err := r.Source.Token(ctx, key)
	if err == nil {
		r.mu.Lock()
		r.seen = append(r.seen, tok.Access.Reveal())
		r.mu.Unlock()
	}
	return tok, err
}

// Invalidate is Source.Invalidate.
func (r *Recorder) Invalidate(key auth.Key, rejected auth.Token) { r.Source.Invalidate(key, rejected) }

// Issued returns the access tokens given out so far.
func (r *Recorder) Issued() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}
