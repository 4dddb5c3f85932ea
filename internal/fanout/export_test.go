package fanout

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/messages"
)

// DecodeExport reads and decodes the export ending at the export.completed
// b (stream sequence end) as the cache does, and returns how many change
// events it holds; keep is what must stay reachable while the caller
// measures memory.
func DecodeExport(ctx context.Context, js jetstream.JetStream, b messages.Boundary, end uint64) (n int, keep any, err error) {
	d, err := decode(ctx, js, b, 0, end)
	if err != nil {
		return 0, nil, err
	}
	return len(d.changes), d, nil
}

// Holding is the number of change events f's cache holds.
func (f *Fanout) Holding() int { return f.cache.holding() }

// Together is the number of vendors' exports f published in a group with
// other vendors alike.
func (f *Fanout) Together() int { return int(f.cache.together.Load()) }

// Decoded is the number of exports f read into memory.
func (f *Fanout) Decoded() int { return int(f.cache.decoded.Load()) }
