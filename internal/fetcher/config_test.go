package fetcher

import (
	"testing"

	"github.com/skolebuss/skolebuss/internal/config"
)

// The streams' replicas from the config reach the stage's attempts bucket.
func TestFromConfigCarriesReplicas(t *testing.T) {
	c := config.Default()
	c.NATS.Replicas = 3
	f := &Fetcher{cfg: FromConfig(c)}
	if r := f.WorkerConfig().Replicas; r != 3 {
		t.Errorf("worker replicas %d, want the config's 3", r)
	}
}
