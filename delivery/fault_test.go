package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/syncbuf"
	"github.com/bucketrelay/bucketrelay/wal"
)

// logBuffer collects an engine's log lines.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// faultyLog is a real log whose Read, Advance and Quarantine fail while
// their function field returns an error.
type faultyLog struct {
	*wal.Log
	readErr       func() error
	advanceErr    func() error
	quarantineErr func() error
}

func (f *faultyLog) Read(ctx context.Context, from uint64, target string, fn func(wal.Record) bool) (uint64, error) {
	if f.readErr != nil {
		if err := f.readErr(); err != nil {
			return from, err
		}
	}
	return f.Log.Read(ctx, from, target, fn)
}

func (f *faultyLog) Advance(target string, next uint64) error {
	if f.advanceErr != nil {
		if err := f.advanceErr(); err != nil {
			return err
		}
	}
	return f.Log.Advance(target, next)
}

func (f *faultyLog) Quarantine(target string, r wal.Record, reason string, attempts int) error {
	if f.quarantineErr != nil {
		if err := f.quarantineErr(); err != nil {
			return err
		}
	}
	return f.Log.Quarantine(target, r, reason, attempts)
}

func openLog(t testing.TB) *wal.Log {
	t.Helper()
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// runEngine starts an engine over l with specs and returns it and a
// channel that receives Run's result. The engine is stopped at cleanup.
func runEngine(t testing.TB, l delivery.Log, opts delivery.Options, specs ...delivery.Spec) (*delivery.Engine, <-chan error) {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 10*time.Millisecond
	}
	e := delivery.New(l, opts)
	for _, s := range specs {
		if err := e.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() { errc <- e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, errc
}

// waitRun waits for Run to return on its own.
func waitRun(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the log failed under it")
		return nil
	}
}

func put(key string, i int) event.Record {
	return targettest.Record("b", key, event.ObjectCreatedPut, i)
}

// TestMaxAttemptsQuarantinesOnNamespaceTargets: a namespace window that
// fails before any write is read again, and its items keep their attempt
// counts across the reads: the poison event is quarantined after exactly
// MaxAttempts sends and the others are delivered.
func TestMaxAttemptsQuarantinesOnNamespaceTargets(t *testing.T) {
	var mu sync.Mutex
	poisonSends := 0
	got := map[string]int{}
	l := openLog(t)
	e, _ := runEngine(t, l, delivery.Options{MaxAttempts: 3}, delivery.Spec{ID: id, Namespace: true, Target: &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		var be delivery.BatchError
		for i, it := range items {
			if it.Key == "b/poison" {
				poisonSends++
				be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: errors.New("503 busy")})
				continue
			}
			got[it.Key]++
		}
		if be.Failed != nil {
			return &be
		}
		return nil
	}}})
	appendRecs(t, l, put("poison", 0))
	// While the poison event is alone in its window, every send of it
	// fails as a whole and the window is read again.
	waitFor(t, "two sends of the poison event", func() bool { mu.Lock(); defer mu.Unlock(); return poisonSends >= 2 })
	appendRecs(t, l, put("a", 1), put("b", 2), put("c", 3))
	waitFor(t, "the quarantine", func() bool { return e.Stats()[0].Quarantined == 1 })
	waitFor(t, "the other events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	waitFor(t, "an empty backlog", func() bool { return e.Stats()[0].Pending == 0 })
	time.Sleep(30 * time.Millisecond) // any further send would show now
	mu.Lock()
	defer mu.Unlock()
	if poisonSends != 3 {
		t.Fatalf("the poison event was sent %d times, want 3 (MaxAttempts)", poisonSends)
	}
	if got["b/a"] != 1 || got["b/b"] != 1 || got["b/c"] != 1 {
		t.Fatalf("deliveries = %v, want a, b and c once each", got)
	}
	var q []wal.QuarantineEntry
	waitFor(t, "the quarantine entry", func() bool { q, _ = l.Quarantined(id); return len(q) == 1 })
	if q[0].Key != "b/poison" || q[0].Attempts != 3 || q[0].Error != "503 busy" {
		t.Fatalf("quarantine = %+v, want b/poison after 3 attempts with 503 busy", q[0])
	}
}

// TestRunReturnsLogFailure: a cursor move the log refuses (it failed
// after a storage error) ends the loops, and Run returns the error.
func TestRunReturnsLogFailure(t *testing.T) {
	var logs logBuffer
	fl := &faultyLog{Log: openLog(t)}
	var failing atomic.Bool
	fl.advanceErr = func() error {
		if failing.Load() {
			return fmt.Errorf("%w: wal.db: fdatasync: input/output error", wal.ErrFailed)
		}
		return nil
	}
	var other atomic.Int64
	_, errc := runEngine(t, fl, delivery.Options{Logger: logs.logger()},
		delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error { return nil }}},
		delivery.Spec{ID: "other", Target: &fakeTarget{send: func(items []delivery.Item) error { other.Add(int64(len(items))); return nil }}})
	failing.Store(true)
	appendRecs(t, fl.Log, put("a", 0))
	err := waitRun(t, errc)
	if !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Run returned %v, want an error wrapping wal.ErrFailed", err)
	}
	// Each loop that meets the failure says so, naming its target: one
	// line, or two when both loops met it before Run stopped them.
	if n := len(logs.Lines("delivery stopped")); n < 1 || n > 2 {
		t.Fatalf("%d \"delivery stopped\" lines, want 1 or 2:\n%s", n, strings.Join(logs.Lines(""), "\n"))
	}
}

// TestRunReturnsWhenTheLogClosesUnderIt: a log closed while the engine
// runs ends Run with an error wrapping wal.ErrClosed instead of leaving a
// loop silently stopped.
func TestRunReturnsWhenTheLogClosesUnderIt(t *testing.T) {
	l := openLog(t)
	sending := make(chan struct{})
	closed := make(chan struct{})
	var once sync.Once
	_, errc := runEngine(t, l, delivery.Options{}, delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error {
		once.Do(func() { close(sending) })
		<-closed
		return nil
	}}})
	appendRecs(t, l, put("a", 0))
	<-sending
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	close(closed)
	if err := waitRun(t, errc); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Run returned %v, want an error wrapping wal.ErrClosed", err)
	}
}

// TestQuarantineRefusedIsFatal: when the log refuses a quarantine entry
// the loop stops before moving its cursor past the event.
func TestQuarantineRefusedIsFatal(t *testing.T) {
	fl := &faultyLog{Log: openLog(t)}
	fl.quarantineErr = func() error { return fmt.Errorf("%w: disk gone", wal.ErrFailed) }
	_, errc := runEngine(t, fl, delivery.Options{}, delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error {
		return delivery.Permanent(errors.New("400 bad request"))
	}}})
	appendRecs(t, fl.Log, put("a", 0))
	if err := waitRun(t, errc); !errors.Is(err, wal.ErrFailed) {
		t.Fatalf("Run returned %v, want an error wrapping wal.ErrFailed", err)
	}
	if c, _ := fl.Cursor(id); c != 1 {
		t.Fatalf("cursor = %d, want 1: the event was neither delivered nor quarantined", c)
	}
}

// TestReadErrorMarksTheTargetDown: a damaged record makes the target
// down, with the error, retried with backoff and logged once plus
// summaries; once the log reads again the events are delivered.
func TestReadErrorMarksTheTargetDown(t *testing.T) {
	var logs logBuffer
	fl := &faultyLog{Log: openLog(t)}
	var damaged atomic.Bool
	var reads atomic.Int64
	fl.readErr = func() error {
		if damaged.Load() {
			reads.Add(1)
			return fmt.Errorf("wal: frame 1: %w", wal.ErrCorrupt)
		}
		return nil
	}
	var got atomic.Int64
	e, _ := runEngine(t, fl, delivery.Options{Logger: logs.logger(), RepeatLogInterval: time.Hour},
		delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error { got.Add(int64(len(items))); return nil }}})
	damaged.Store(true)
	appendRecs(t, fl.Log, put("a", 0))
	waitFor(t, "20 failed reads", func() bool { return reads.Load() >= 20 })
	st := e.Stats()[0]
	if st.State != delivery.StateDown || st.Up || !strings.Contains(st.LastError, "corrupt") || st.LastErrorTime.IsZero() || st.NextRetry.IsZero() {
		t.Fatalf("stats = %+v, want the target down with the read error and a next retry", st)
	}
	if n := len(logs.Lines("level=WARN")) + len(logs.Lines("level=ERROR")); n != 1 {
		t.Fatalf("%d warnings for %d failed reads, want 1:\n%s", n, reads.Load(), strings.Join(logs.Lines("level="), "\n"))
	}
	damaged.Store(false)
	waitFor(t, "the delivery", func() bool { return got.Load() == 1 })
	waitFor(t, "the target up", func() bool { return e.Stats()[0].State == delivery.StateUp })
	if n := len(logs.Lines("reading the log works again after")); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, strings.Join(logs.Lines("level="), "\n"))
	}
}

// TestQuarantineReasonIsTheRealCause: items a target did not try because
// an earlier one failed are quarantined with that earlier failure as the
// reason, not "not sent".
func TestQuarantineReasonIsTheRealCause(t *testing.T) {
	l := openLog(t)
	e, _ := runEngine(t, l, delivery.Options{MaxAttempts: 2}, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		// Like the webhook target: one request at a time, stop at the
		// first retryable failure.
		be := &delivery.BatchError{Failed: []delivery.ItemError{{Index: 0, Err: errors.New("webhook: dial tcp 127.0.0.1:9: connection refused")}}}
		for i := 1; i < len(items); i++ {
			be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: fmt.Errorf("webhook: not sent: %w", delivery.ErrEarlierFailed)})
		}
		return be
	}}})
	appendRecs(t, l, put("a", 0), put("b", 1), put("c", 2))
	waitFor(t, "3 quarantined", func() bool { return e.Stats()[0].Quarantined == 3 })
	var q []wal.QuarantineEntry
	waitFor(t, "3 quarantine entries", func() bool { q, _ = l.Quarantined(id); return len(q) == 3 })
	for _, en := range q {
		if en.Error != "webhook: dial tcp 127.0.0.1:9: connection refused" || en.Attempts != 2 {
			t.Fatalf("quarantine entry %d: error %q after %d attempts, want the connection refused after 2", en.Seq, en.Error, en.Attempts)
		}
	}
}

// TestBackIsLoggedOnlyAfterDown: quarantines do not make a target down,
// so no "target is back" follows them; a real outage logs its first
// failure and its end once each, with the count.
func TestBackIsLoggedOnlyAfterDown(t *testing.T) {
	var logs logBuffer
	l := openLog(t)
	var mu sync.Mutex
	fails := 0
	got := 0
	e, _ := runEngine(t, l, delivery.Options{Logger: logs.logger()}, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return errors.New("connection refused")
		}
		var be delivery.BatchError
		for i, it := range items {
			if it.Key == "b/bad" {
				be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: delivery.Permanent(errors.New("400 rejected"))})
				continue
			}
			got++
		}
		if be.Failed != nil {
			return &be
		}
		return nil
	}}})
	appendRecs(t, l, put("a", 0), put("bad", 1), put("c", 2))
	waitFor(t, "the quarantine", func() bool { return e.Stats()[0].Quarantined == 1 })
	appendRecs(t, l, put("d", 3))
	waitFor(t, "3 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return got == 3 })
	if st := e.Stats()[0]; st.State != delivery.StateUp || st.LastError != "400 rejected" {
		t.Fatalf("stats = %+v, want up with the quarantine's reason as last error", st)
	}
	if n := len(logs.Lines("target is back")); n != 0 {
		t.Fatalf("\"target is back\" logged after a quarantine:\n%s", strings.Join(logs.Lines("target is back"), "\n"))
	}
	mu.Lock()
	fails = 3
	mu.Unlock()
	appendRecs(t, l, put("e", 4))
	waitFor(t, "4 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return got == 4 })
	// The target counts a delivery inside Send; the loop logs the
	// recovery only after Send returns, so wait for the line.
	waitFor(t, "the recovery line", func() bool { return len(logs.Lines("target is back")) > 0 })
	if n := len(logs.Lines("send failed, retrying")); n != 1 {
		t.Fatalf("%d \"send failed\" lines, want 1", n)
	}
	back := logs.Lines("target is back")
	if len(back) != 1 || !strings.Contains(back[0], "target is back after 3 failures over") {
		t.Fatalf("recovery lines = %q, want one \"target is back after 3 failures over …\"", back)
	}
}

// TestRepeatedFailuresAreSummarised: a target failing the same way on
// every retry logs its first failure, then one summary per interval, not
// one line per retry.
func TestRepeatedFailuresAreSummarised(t *testing.T) {
	var logs logBuffer
	l := openLog(t)
	const every = 100 * time.Millisecond
	e, _ := runEngine(t, l, delivery.Options{Logger: logs.logger(), RepeatLogInterval: every},
		delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error { return errors.New("redis: NOAUTH Authentication required") }}})
	start := time.Now()
	appendRecs(t, l, put("a", 0))
	waitFor(t, "40 retries", func() bool { return e.Stats()[0].Retried >= 40 })
	time.Sleep(2 * every)
	warns := logs.Lines("level=WARN")
	elapsed := time.Since(start) // after reading the lines: no line is later
	retried := e.Stats()[0].Retried
	if max := 2 + int(elapsed/every); len(warns) > max || len(warns) < 2 {
		t.Fatalf("%d warnings for %d retries over %s, want 2 to %d:\n%s", len(warns), retried, elapsed, max, strings.Join(warns, "\n"))
	}
	if !strings.Contains(warns[0], "send failed, retrying") || !strings.Contains(warns[1], "still failing") || !strings.Contains(warns[1], "failures=") {
		t.Fatalf("warnings = %q, want the first failure then \"still failing\" with a count", warns)
	}
}

// TestRetryDelayCappedAtMaxBackoff: jitter never takes the retry delay
// above MaxBackoff.
func TestRetryDelayCappedAtMaxBackoff(t *testing.T) {
	var logs logBuffer
	l := openLog(t)
	const maxBackoff = 20 * time.Millisecond
	e, _ := runEngine(t, l, delivery.Options{MinBackoff: maxBackoff, MaxBackoff: maxBackoff, Logger: logs.logger()},
		delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error { return errors.New("connection refused") }}})
	appendRecs(t, l, put("a", 0))
	waitFor(t, "the first failure", func() bool { return e.Stats()[0].Retried >= 1 })
	seen := map[time.Time]bool{}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && len(seen) < 20; time.Sleep(3 * time.Millisecond) {
		st := e.Stats()[0]
		if st.State != delivery.StateDown {
			t.Fatalf("state = %q, want %q", st.State, delivery.StateDown)
		}
		if d := st.NextRetry.Sub(st.LastErrorTime); d > maxBackoff {
			t.Fatalf("retry in %s, want at most MaxBackoff %s", d, maxBackoff)
		}
		seen[st.LastErrorTime] = true
	}
	if len(seen) < 10 {
		t.Fatalf("saw %d retries, want at least 10", len(seen))
	}
	first := logs.Lines("send failed, retrying")
	var d time.Duration
	if len(first) != 1 {
		t.Fatalf("first failure lines = %q", first)
	}
	if i := strings.Index(first[0], "retry_in="); i >= 0 {
		d, _ = time.ParseDuration(strings.Fields(first[0][i+len("retry_in="):])[0])
	}
	if d <= 0 || d > maxBackoff {
		t.Fatalf("logged retry_in %s, want in (0, %s]: %s", d, maxBackoff, first[0])
	}
}

// TestWindowBytesBoundsBatches: a batch holds at most WindowBytes of
// records, whatever MaxBatch allows; every event still arrives, in order.
func TestWindowBytesBoundsBatches(t *testing.T) {
	const windowBytes = 16 << 10
	for _, ns := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespace=%v", ns), func(t *testing.T) {
			l := openLog(t)
			var mu sync.Mutex
			var seqs []uint64
			biggest := 0
			e, _ := runEngine(t, l, delivery.Options{WindowBytes: windowBytes}, delivery.Spec{ID: id, Namespace: ns, MaxBatch: 1000, Target: &fakeTarget{send: func(items []delivery.Item) error {
				mu.Lock()
				defer mu.Unlock()
				size := 0
				for _, it := range items {
					size += len(it.Record)
					seqs = append(seqs, it.Seq)
				}
				biggest = max(biggest, size)
				return nil
			}}})
			l.Register(id)
			entries := make([]*wal.Entry, 100)
			for i := range entries {
				entries[i] = &wal.Entry{Targets: []string{id}, Key: fmt.Sprintf("b/k%d", i), Name: string(event.ObjectCreatedPut), Data: bytes.Repeat([]byte{'x'}, 2000)}
			}
			if _, err := l.Append(context.Background(), entries...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "100 deliveries", func() bool { mu.Lock(); defer mu.Unlock(); return len(seqs) == 100 })
			_ = e
			mu.Lock()
			defer mu.Unlock()
			if biggest > windowBytes || biggest < windowBytes/4 {
				t.Fatalf("largest batch held %d bytes of records, want at most WindowBytes %d (and more than a few records)", biggest, windowBytes)
			}
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("delivery %d has sequence %d, want %d", i, s, i+1)
				}
			}
		})
	}
}

// TestThrottledTargetIsBackingOff: a target that takes some items and
// refuses others with a retryable error is backing off, not down.
func TestThrottledTargetIsBackingOff(t *testing.T) {
	l := openLog(t)
	var got atomic.Int64
	e, _ := runEngine(t, l, delivery.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
			var be delivery.BatchError
			for i, it := range items {
				if it.Key == "b/hot" {
					be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: errors.New("429 slow down")})
					continue
				}
				got.Add(1)
			}
			if be.Failed != nil {
				return &be
			}
			return nil
		}}})
	appendRecs(t, l, put("a", 0), put("hot", 1), put("c", 2))
	waitFor(t, "2 deliveries", func() bool { return got.Load() == 2 })
	waitFor(t, "a retry", func() bool { return e.Stats()[0].Retried >= 1 })
	if st := e.Stats()[0]; st.State != delivery.StateBackingOff || st.Up || st.LastError != "429 slow down" || !st.NextRetry.After(st.LastErrorTime) {
		t.Fatalf("stats = %+v, want backing off after the 429 with a next retry", st)
	}
}

// TestAddToleratesDamage: a damaged record in a target's backlog does not
// make Add fail (the relay must start while intact records are pending);
// the loop reports the damage as the target's error.
func TestAddToleratesDamage(t *testing.T) {
	fl := &faultyLog{Log: openLog(t)}
	fl.Register(id)
	appendRecs(t, fl.Log, put("a", 0))
	var damaged atomic.Bool
	damaged.Store(true)
	fl.readErr = func() error {
		if damaged.Load() {
			return fmt.Errorf("wal: frame 1: %w", wal.ErrCorrupt)
		}
		return nil
	}
	var got atomic.Int64
	e, _ := runEngine(t, fl, delivery.Options{}, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error { got.Add(int64(len(items))); return nil }}})
	waitFor(t, "the target down", func() bool { return e.Stats()[0].State == delivery.StateDown })
	if st := e.Stats()[0]; !strings.Contains(st.LastError, "corrupt") {
		t.Fatalf("stats = %+v, want the damage as last error", st)
	}
	damaged.Store(false)
	waitFor(t, "the delivery", func() bool { return got.Load() == 1 })
}
