package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/bus/bustest"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/waitfor"
)

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	return bustest.Open(t).JS
}

func testConfig() Config {
	return Config{
		Stage: "fetch", Stream: bus.StreamJobs, Consumer: "test", FilterSubject: messages.JobsSubjects,
		AckWait: time.Second, MaxAttempts: 3, Backoff: []time.Duration{50 * time.Millisecond},
		TenantOf: messages.ParseJobSubject, DrainTimeout: 5 * time.Second,
	}
}

// start runs the stage until the test ends.
func start(t *testing.T, js jetstream.JetStream, cfg Config, h Handler) context.CancelFunc {
	t.Helper()
	return startWith(t, js, cfg, h, nil, sdktrace.NewTracerProvider())
}

// startWith is start with a logger and a tracer provider.
func startWith(t *testing.T, js jetstream.JetStream, cfg Config, h Handler, logger *slog.Logger, tp trace.TracerProvider) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, js, cfg, h, logger, tp) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return cancel
}

func publish(t *testing.T, js jetstream.JetStream, tenant, body string) {
	t.Helper()
	if _, err := js.Publish(context.Background(), "jobs.export."+tenant, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	waitfor.Condition(t, d, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func deadLetters(t *testing.T, js jetstream.JetStream) []messages.DeadLetter {
	t.Helper()
	var out []messages.DeadLetter
	for _, raw := range bustest.Msgs(t, js, bus.StreamDLQ) {
		dl, err := messages.Decode[messages.DeadLetter](bustest.NATSMsg(raw))
		if err != nil {
			t.Fatalf("dead letter %d does not decode: %v", raw.Sequence, err)
		}
		out = append(out, dl)
	}
	return out
}

func TestSuccessAcksAndRemovesTheJob(t *testing.T) {
	js := setup(t)
	var got atomic.Value
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		got.Store(string(m.Payload) + "|" + Subject(ctx))
		return nil
	})
	publish(t, js, tenantT1, "hello")
	waitFor(t, "the job to be handled and removed", 10*time.Second, func() bool {
		return got.Load() != nil && streamMsgs(t, js, bus.StreamJobs) == 0
	})
	if got.Load() != "hello|jobs.export."+tenantT1 {
		t.Fatalf("handler saw %v", got.Load())
	}
}

func TestPermanentErrorIsDeadLetteredOnce(t *testing.T) {
	js := setup(t)
	var calls atomic.Int32
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		calls.Add(1)
		return failure.Permanentf("invalid_scope", "application lacks scope")
	})
	publish(t, js, tenantT1, `{"job":"x"}`)
	waitFor(t, "a dead letter", 10*time.Second, func() bool { return streamMsgs(t, js, bus.StreamDLQ) == 1 })
	waitFor(t, "the job to leave the work queue", 5*time.Second, func() bool { return streamMsgs(t, js, bus.StreamJobs) == 0 })
	dls := deadLetters(t, js)
	dl := dls[0]
	if dl.Stage != "fetch" || dl.Tenant != tenantT1 || dl.Reason != "invalid_scope" || dl.Class != "permanent" || dl.Attempts != 1 {
		t.Fatalf("dead letter %+v", dl)
	}
	if dl.TraceID == "" || string(dl.Message.Data) != `{"job":"x"}` || dl.Message.Subject != "jobs.export."+tenantT1 {
		t.Fatalf("dead letter lacks trace id or the failed message: %+v", dl)
	}
	time.Sleep(300 * time.Millisecond) // time for a redelivery, which must not come
	if calls.Load() != 1 {
		t.Fatalf("permanent error handled %d times, want 1", calls.Load())
	}
}

func TestTransientErrorsAreRetriedThenSucceed(t *testing.T) {
	js := setup(t)
	var mu sync.Mutex
	var seen []int
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, Attempt(ctx))
		if len(seen) < 3 {
			return failure.Transientf("http_502", "bad gateway")
		}
		return nil
	})
	publish(t, js, tenantT1, "x")
	waitFor(t, "success on the third attempt", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3
	})
	waitFor(t, "the job to be removed", 5*time.Second, func() bool { return streamMsgs(t, js, bus.StreamJobs) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if seen[0] != 1 || seen[1] != 2 || seen[2] != 3 {
		t.Fatalf("attempts %v, want 1 2 3", seen)
	}
	if n := streamMsgs(t, js, bus.StreamDLQ); n != 0 {
		t.Fatalf("%d dead letters for a job that succeeded", n)
	}
}

func TestTransientErrorsDeadLetterAfterMaxAttempts(t *testing.T) {
	js := setup(t)
	var calls atomic.Int32
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		calls.Add(1)
		return errors.New("connection reset") // unclassified: transient
	})
	publish(t, js, tenantT1, "x")
	waitFor(t, "a dead letter", 10*time.Second, func() bool { return streamMsgs(t, js, bus.StreamDLQ) == 1 })
	dl := deadLetters(t, js)[0]
	if dl.Attempts != 3 || dl.Class != "transient" || calls.Load() != 3 {
		t.Fatalf("dead letter after %d calls: %+v, want 3 attempts", calls.Load(), dl)
	}
}

func TestThrottledIsDelayedAndNotAnAttempt(t *testing.T) {
	js := setup(t)
	var mu sync.Mutex
	var times []time.Time
	var attempts []int
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		attempts = append(attempts, Attempt(ctx))
		if len(times) < 3 {
			return &failure.Error{Class: failure.Throttled, Reason: "http_429", RetryAfter: 400 * time.Millisecond}
		}
		return nil
	})
	publish(t, js, tenantT1, "x")
	waitFor(t, "three deliveries", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(times) == 3
	})
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < 3; i++ {
		if gap := times[i].Sub(times[i-1]); gap < 350*time.Millisecond {
			t.Fatalf("redelivered after %v, want the 400ms Retry-After", gap)
		}
	}
	if attempts[2] != 1 {
		t.Fatalf("throttled deliveries counted as attempts: %v", attempts)
	}
}

func TestLongHandlerKeepsItsMessage(t *testing.T) {
	js := setup(t)
	var calls atomic.Int32
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		calls.Add(1)
		time.Sleep(3 * time.Second) // three AckWaits
		return nil
	})
	publish(t, js, tenantT1, "x")
	waitFor(t, "the job to finish", 15*time.Second, func() bool { return streamMsgs(t, js, bus.StreamJobs) == 0 })
	if calls.Load() != 1 {
		t.Fatalf("a handler longer than AckWait was redelivered: %d calls", calls.Load())
	}
}

func TestShutdownLetsInFlightWorkFinish(t *testing.T) {
	js := setup(t)
	started := make(chan struct{})
	var finished atomic.Bool
	cancel := start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		close(started)
		time.Sleep(time.Second)
		finished.Store(ctx.Err() == nil)
		return nil
	})
	publish(t, js, tenantT1, "x")
	<-started
	cancel()
	waitFor(t, "the in-flight job to be acked", 10*time.Second, func() bool { return streamMsgs(t, js, bus.StreamJobs) == 0 })
	if !finished.Load() {
		t.Fatal("in-flight handler's context was cancelled before the drain timeout")
	}
}

func TestPanicIsATransientFailure(t *testing.T) {
	js := setup(t)
	var calls atomic.Int32
	start(t, js, testConfig(), func(ctx context.Context, m *message.Message) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	publish(t, js, tenantT1, "x")
	waitFor(t, "success after a panic", 10*time.Second, func() bool { return calls.Load() == 2 && streamMsgs(t, js, bus.StreamJobs) == 0 })
}

func TestHostileSubjectStillDeadLetters(t *testing.T) {
	js := setup(t)
	cfg := testConfig()
	start(t, js, cfg, func(ctx context.Context, m *message.Message) error {
		_, err := messages.DecodeWatermill[messages.ExportJob](m)
		return err
	})
	publish(t, js, tenantT1, "not a job") // no CloudEvents headers: unknown type, permanent
	waitFor(t, "a dead letter", 10*time.Second, func() bool { return streamMsgs(t, js, bus.StreamDLQ) == 1 })
	dl := deadLetters(t, js)[0]
	b, _ := json.Marshal(dl)
	if dl.Class != "permanent" {
		t.Fatalf("undecodable message: %s", b)
	}
}

// Where the attempts bucket does not exist (provisioning makes it), Run
// makes it with the configured replicas: three on a single server cannot
// be placed, and Run says so about the bucket.
func TestAttemptsBucketReplicas(t *testing.T) {
	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.Replicas = 7
	if err := Run(ctx, js, cfg, func(context.Context, *message.Message) error { return nil }, nil, nil); err == nil || !strings.Contains(err.Error(), "replicas 7") {
		t.Errorf("replicas 7: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, AttemptsBucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatal(err)
	}
	cfg.Replicas = 3
	if err := Run(ctx, js, cfg, func(context.Context, *message.Message) error { return nil }, nil, nil); err == nil || !strings.Contains(err.Error(), "attempts bucket") {
		t.Errorf("three replicas on one server: %v, want the attempts bucket refused", err)
	}
	kv, err := js.KeyValue(ctx, AttemptsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 1 {
		t.Errorf("attempts bucket has %d replicas", r)
	}
}

// Tenant ids of the tests: UUIDs, as messages.ValidateTenant wants.
const (
	tenantT1 = "11111111-1111-4111-8111-111111111111"
	tenantT2 = "22222222-2222-4222-8222-222222222222"
)
