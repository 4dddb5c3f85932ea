package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/skolebuss/skolebuss/internal/bus"
	"github.com/skolebuss/skolebuss/internal/messages"
	"github.com/skolebuss/skolebuss/internal/publisher"
)

// pollEvery is how often the bench looks at the server while it waits.
const pollEvery = 20 * time.Millisecond

// stage is one running publisher process.
type stage struct {
	cmd    *exec.Cmd
	daemon bool
	stdout *bytes.Buffer // nil when the Launcher set Stdout itself
	stderr *tail         // nil when the Launcher set Stderr itself
	done   chan struct{} // closed once the process has exited and err is set
	err    error         // of cmd.Wait
	hwm    int64         // the largest VmHWM sampled while it ran
}

func startStage(l Launcher, natsURL, exportID, spoolDir string) (*stage, error) {
	cmd := l.Command(natsURL, exportID, spoolDir)
	s := &stage{cmd: cmd, daemon: l.Daemon, done: make(chan struct{})}
	if cmd.Stdout == nil {
		s.stdout = &bytes.Buffer{}
		cmd.Stdout = s.stdout
	}
	if cmd.Stderr == nil {
		s.stderr = &tail{max: 8 << 10}
		cmd.Stderr = s.stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the publisher process: %w", err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// exitedEarly is the error of a process that stopped before its work was
// done.
func (s *stage) exitedEarly(what string) error {
	return fmt.Errorf("the publisher process exited %s (%v)%s", what, s.err, s.stderrTail())
}

func (s *stage) stderrTail() string {
	if s.stderr == nil {
		return ""
	}
	t := strings.TrimSpace(s.stderr.String())
	if t == "" {
		return ""
	}
	return "; its last output:\n" + t
}

// kill ends the process if it still runs and waits for it. Safe to call
// more than once.
func (s *stage) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// waitReady waits until a publisher pulls from the publisher's consumer
// (it has created it and waits for a message) while s runs.
func (s *stage) waitReady(ctx context.Context, js jetstream.JetStream) error {
	wc := publisher.WorkerConfig()
	return poll(ctx, s, "the publisher to wait for exports", func() (bool, error) {
		c, err := js.Consumer(ctx, wc.Stream, wc.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err
		}
		return info.NumWaiting > 0, nil
	})
}

// waitCompleted waits for the export.completed event of exportID and
// returns it with the time the server stored it. A dead letter of the
// publisher for the tenant, or the process exiting first, is an error.
func (s *stage) waitCompleted(ctx context.Context, js jetstream.JetStream, exportID string) (messages.Boundary, time.Time, error) {
	completed, _ := messages.BoundarySubject(Tenant, messages.PhaseCompleted)
	dlq, _ := messages.DLQSubject(publisher.Stage, Tenant)
	var b messages.Boundary
	var at time.Time
	err := poll(ctx, s, "export.completed of "+exportID, func() (bool, error) {
		if m, _, err := lastMsg(ctx, js, bus.StreamDLQ, dlq); err == nil {
			if dl, err := messages.Decode[messages.DeadLetter](m); err == nil {
				return false, fmt.Errorf("the publisher dead-lettered an export (%s): %s", dl.Reason, dl.Error)
			}
		}
		m, t, err := lastMsg(ctx, js, bus.StreamLMS, completed)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if b, err = messages.Decode[messages.Boundary](m); err != nil {
			return false, err
		}
		at = t
		return b.ExportID == exportID, nil
	})
	return b, at, err
}

// finish waits for the process to end after its export: a daemon is
// interrupted once the export's message is acknowledged, any other process
// must exit by itself. A process that fails is an error.
func (s *stage) finish(ctx context.Context, js jetstream.JetStream) error {
	if s.daemon {
		wc := publisher.WorkerConfig()
		err := poll(ctx, s, "the export's acknowledgement", func() (bool, error) {
			c, err := js.Consumer(ctx, wc.Stream, wc.Consumer)
			if err != nil {
				return false, err
			}
			info, err := c.Info(ctx)
			if err != nil {
				return false, err
			}
			return info.NumAckPending == 0 && info.NumPending == 0, nil
		})
		if err != nil {
			return err
		}
		s.sample()
		if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
			return fmt.Errorf("interrupt the publisher process: %w", err)
		}
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("waiting for the publisher process to exit: %w", ctx.Err())
	}
	if s.err != nil {
		return s.exitedEarly("with an error")
	}
	return nil
}

// outcome is the StageOutcome the process printed last, if any.
func (s *stage) outcome() (StageOutcome, bool) {
	if s.stdout == nil {
		return StageOutcome{}, false
	}
	lines := strings.Split(strings.TrimSpace(s.stdout.String()), "\n")
	var o StageOutcome
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &o); err != nil {
		return StageOutcome{}, false
	}
	return o, true
}

// sample notes the process's peak RSS so far.
func (s *stage) sample() {
	select {
	case <-s.done:
	default:
		s.hwm = max(s.hwm, peakRSSOf(strconv.Itoa(s.cmd.Process.Pid)))
	}
}

// peakRSS is the exited process's peak RSS in bytes: what it reported
// itself at the end (RunStage does), or the last sample taken while it
// ran; 0 where the platform does not say.
func (s *stage) peakRSS() int64 {
	o, _ := s.outcome()
	return max(o.PeakRSS, s.hwm)
}

// poll calls cond every pollEvery until it is true, it fails, ctx ends or
// the process s exits.
func poll(ctx context.Context, s *stage, what string, cond func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		s.sample()
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-s.done:
			// It may have exited right after doing what we wait for.
			if ok, err := cond(); err == nil && ok {
				return nil
			}
			return s.exitedEarly("before " + what)
		case <-t.C:
		}
	}
}

// tail keeps the last max bytes written to it. Safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
