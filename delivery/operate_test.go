package delivery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// rejecting is a target that rejects, for good, the keys in bad and
// records what it delivered.
type rejecting struct {
	mu   sync.Mutex
	bad  map[string]string // key -> error
	got  []string
	fail error // while set, every send fails (retryable)
}

func (r *rejecting) Send(_ context.Context, items []delivery.Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	var be delivery.BatchError
	for i, it := range items {
		if msg, ok := r.bad[it.Key]; ok {
			be.Failed = append(be.Failed, delivery.ItemError{Index: i, Err: delivery.Permanent(errors.New(msg))})
			continue
		}
		r.got = append(r.got, it.Key)
	}
	if be.Failed != nil {
		return &be
	}
	return nil
}

func (r *rejecting) Close() error { return nil }

func (r *rejecting) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *rejecting) set(f func(r *rejecting)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(r)
}

func quarantine(t *testing.T, l *wal.Log, n int) []wal.QuarantineItem {
	t.Helper()
	var q []wal.QuarantineItem
	waitFor(t, "the quarantine entries", func() bool {
		var err error
		if q, err = l.QuarantineItems(id); err != nil {
			t.Fatal(err)
		}
		return len(q) == n
	})
	return q
}

// TestRedrive: quarantined events re-driven after the cause is fixed are
// delivered once each, in log order, counted as re-driven, and leave the
// quarantine.
func TestRedrive(t *testing.T) {
	tg := &rejecting{bad: map[string]string{"b/x": "400 bad mapping", "b/y": "400 bad mapping"}}
	l, e := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{})
	appendRecs(t, l, put("x", 0), put("a", 1), put("y", 2), put("c", 3))
	q := quarantine(t, l, 2)
	if q[0].Key != "b/x" || q[1].Key != "b/y" || q[0].Error != "400 bad mapping" {
		t.Fatalf("quarantine = %+v, want x and y with the target's error", q)
	}
	tg.set(func(r *rejecting) { r.bad = nil })
	// Given newest first: they still go in log order.
	n, err := e.Redrive(id, []wal.QuarantineItem{q[1], q[0]})
	if err != nil || n != 2 {
		t.Fatalf("Redrive = %d, %v; want 2 queued", n, err)
	}
	quarantine(t, l, 0)
	waitFor(t, "2 re-driven", func() bool { return e.Stats()[0].Redriven == 2 })
	got := tg.delivered()
	if strings.Join(got, " ") != "b/a b/c b/x b/y" {
		t.Fatalf("delivered %v, want a, c, then x and y once each in log order", got)
	}
	st := e.Stats()[0]
	if st.Redriven != 2 || st.Delivered != 2 || st.Quarantined != 2 {
		t.Fatalf("stats = %+v, want 2 re-driven, 2 delivered, 2 quarantined", st)
	}
	if _, err := e.Redrive("arn:minio:sqs::9:none", q); !errors.Is(err, delivery.ErrUnknownTarget) {
		t.Fatalf("Redrive of an unknown target: %v, want ErrUnknownTarget", err)
	}
}

// TestRedriveFailsAgain: a re-driven event rejected again goes back to the
// quarantine with the new reason, its attempts added up and its first
// failure kept.
func TestRedriveFailsAgain(t *testing.T) {
	tg := &rejecting{bad: map[string]string{"b/x": "400 first cause"}}
	l, e := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{MaxAttempts: 3})
	appendRecs(t, l, put("x", 0))
	q := quarantine(t, l, 1)
	first := q[0].FirstFailure
	tg.set(func(r *rejecting) { r.bad["b/x"] = "401 second cause" })
	if _, err := e.Redrive(id, q); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new reason", func() bool {
		q, _ = l.QuarantineItems(id)
		return len(q) == 1 && q[0].Error == "401 second cause"
	})
	if q[0].Attempts != 2 || !q[0].FirstFailure.Equal(first) || !q[0].LastFailure().After(first) {
		t.Fatalf("entry = %+v; want 2 attempts, first failure %v kept, a later last failure", q[0], first)
	}
	waitFor(t, "the count", func() bool { return e.Stats()[0].Quarantined == 2 })
	if st := e.Stats()[0]; st.Redriven != 0 || st.LastError != "401 second cause" {
		t.Fatalf("stats = %+v; want 0 re-driven, 2 quarantined, the new last error", st)
	}
	// A retryable failure is retried, and counts against MaxAttempts.
	tg.set(func(r *rejecting) { r.bad = nil; r.fail = errors.New("503 busy") })
	if _, err := e.Redrive(id, q); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "quarantined after 3 more attempts", func() bool {
		q, _ = l.QuarantineItems(id)
		return len(q) == 1 && q[0].Error == "503 busy" && q[0].Attempts == 5
	})
}

// TestPauseResume: a paused target is sent nothing while its events are
// logged; its state is paused; Resume delivers them in order.
func TestPauseResume(t *testing.T) {
	tg := &rejecting{}
	l, e := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{})
	appendRecs(t, l, put("a", 0))
	waitFor(t, "a", func() bool { return len(tg.delivered()) == 1 })
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, put("b", 1), put("c", 2))
	time.Sleep(200 * time.Millisecond)
	if got := tg.delivered(); len(got) != 1 {
		t.Fatalf("a paused target was sent %v", got)
	}
	st := e.Stats()[0]
	if st.State != delivery.StatePaused || !st.Paused || st.Pending != 2 {
		t.Fatalf("stats while paused = %+v, want state paused with 2 pending", st)
	}
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held events", func() bool { return len(tg.delivered()) == 3 })
	if got := strings.Join(tg.delivered(), " "); got != "b/a b/b b/c" {
		t.Fatalf("delivered %s, want a b c", got)
	}
	if st := e.Stats()[0]; st.State != delivery.StateUp || st.Pending != 0 {
		t.Fatalf("stats after resume = %+v", st)
	}
	if err := e.Pause("arn:minio:sqs::9:none"); !errors.Is(err, delivery.ErrUnknownTarget) {
		t.Fatalf("Pause of an unknown target: %v", err)
	}
}

// TestPauseDuringOutage: a pause ends the retries of a target that is
// down without waiting out its backoff, and resume retries it.
func TestPauseDuringOutage(t *testing.T) {
	tg := &rejecting{fail: errors.New("connection refused")}
	l, e := run(t, delivery.Spec{ID: id, Target: tg}, delivery.Options{})
	appendRecs(t, l, put("a", 0))
	waitFor(t, "down", func() bool { return e.Stats()[0].State == delivery.StateDown })
	e.Pause(id)
	waitFor(t, "paused", func() bool { return e.Stats()[0].State == delivery.StatePaused })
	retried := e.Stats()[0].Retried
	time.Sleep(100 * time.Millisecond)
	if r := e.Stats()[0].Retried; r > retried+1 {
		t.Fatalf("a paused target was retried %d times", r-retried)
	}
	tg.set(func(r *rejecting) { r.fail = nil })
	e.Resume(id)
	waitFor(t, "a", func() bool { return len(tg.delivered()) == 1 })
}

// probing is a target whose Probe fails while fail is set.
type probing struct {
	rejecting
	fail   atomic.Bool
	probes atomic.Int32
}

func (p *probing) Probe(ctx context.Context) error {
	p.probes.Add(1)
	if p.fail.Load() {
		return errors.New("dial tcp 127.0.0.1:1: connection refused")
	}
	return nil
}

// TestProbeReportsDownAtStart: a target whose probe fails is down before
// any event is sent, and up again once a probe succeeds.
func TestProbeReportsDownAtStart(t *testing.T) {
	defer delivery.SetProbeEvery(20 * time.Millisecond)()
	p := &probing{}
	p.fail.Store(true)
	_, e := run(t, delivery.Spec{ID: id, Target: p}, delivery.Options{})
	waitFor(t, "down", func() bool { return e.Stats()[0].State == delivery.StateDown })
	st := e.Stats()[0]
	if !strings.Contains(st.LastError, "connection refused") || st.LastErrorTime.IsZero() || st.Up {
		t.Fatalf("stats = %+v, want down with the probe's error", st)
	}
	p.fail.Store(false)
	waitFor(t, "up after a probe succeeds", func() bool { return e.Stats()[0].State == delivery.StateUp })
	n := p.probes.Load()
	time.Sleep(100 * time.Millisecond)
	if p.probes.Load() != n {
		t.Fatal("probing went on after a probe succeeded")
	}
}
