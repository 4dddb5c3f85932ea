package fetcher

import (
	"testing"
	"time"

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

func TestFromConfigCarriesRetry(t *testing.T) {
	c := config.Default()
	c.Retry = config.Retry{MaxAttempts: 9, Backoff: []time.Duration{2 * time.Second, time.Minute}}
	w := (&Fetcher{cfg: FromConfig(c)}).WorkerConfig()
	if w.MaxAttempts != 9 || len(w.Backoff) != 2 || w.Backoff[1] != time.Minute {
		t.Errorf("worker attempts %d, backoff %v; want the config's 9 and [2s 1m]", w.MaxAttempts, w.Backoff)
	}
}
