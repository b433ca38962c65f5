package delivery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// recorder is a Target that keeps what it got and whether it was closed.
type recorder struct {
	mu     sync.Mutex
	got    []uint64
	closed atomic.Bool
}

func (r *recorder) Send(_ context.Context, items []delivery.Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		r.got = append(r.got, it.Seq)
	}
	return nil
}

func (r *recorder) Close() error { r.closed.Store(true); return nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestAddWhileRunning: a target added to a running engine starts at once
// and receives only what is routed to it after it was added; removing it
// stops delivery and closes it.
func TestAddWhileRunning(t *testing.T) {
	first := &recorder{}
	l, e := run(t, delivery.Spec{ID: id, Target: first}, delivery.Options{})
	appendRecs(t, l, put("b/k1", 1))
	waitFor(t, "first target", func() bool { return first.count() == 1 })

	const late = "arn:minio:sqs::late:fake"
	second := &recorder{}
	if err := e.Add(delivery.Spec{ID: late, Target: second}); err != nil {
		t.Fatal(err)
	}
	rec := put("b/k2", 2)
	e1, e2 := targettest.Entry(rec, id), targettest.Entry(rec, late)
	e1.Targets = append(e1.Targets, e2.Targets...)
	if _, err := l.Append(context.Background(), e1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "late target", func() bool { return second.count() == 1 })
	waitFor(t, "first target again", func() bool { return first.count() == 2 })

	if err := e.Remove(context.Background(), late); err != nil {
		t.Fatal(err)
	}
	if !second.closed.Load() {
		t.Fatal("a removed target must be closed")
	}
	if err := e.Remove(context.Background(), late); !errors.Is(err, delivery.ErrUnknownTarget) {
		t.Fatalf("removing twice: %v, want ErrUnknownTarget", err)
	}
	for _, s := range e.Stats() {
		if s.ID == late {
			t.Fatal("a removed target is still in Stats")
		}
	}
	if first.closed.Load() {
		t.Fatal("removing one target closed another")
	}
}

// TestRestartKeepsTargetAndCounts: Restart runs its function while no loop
// sends, keeps the target open and its counts, and delivery goes on.
func TestRestartKeepsTargetAndCounts(t *testing.T) {
	r := &recorder{}
	l, e := run(t, delivery.Spec{ID: id, Target: r}, delivery.Options{})
	appendRecs(t, l, put("b/k1", 1))
	waitFor(t, "delivery", func() bool { return r.count() == 1 })
	called := false
	if err := e.Restart(context.Background(), id, func() error { called = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !called || r.closed.Load() {
		t.Fatalf("between called %v, target closed %v", called, r.closed.Load())
	}
	if s := e.Stats()[0]; s.Delivered != 1 {
		t.Fatalf("delivered after restart = %d, want 1", s.Delivered)
	}
	appendRecs(t, l, put("b/k2", 2))
	waitFor(t, "delivery after restart", func() bool { return r.count() == 2 })
}

// TestAddAfterRunFails: once Run has returned, Add says so.
func TestAddAfterRunFails(t *testing.T) {
	l := openLog(t)
	e := delivery.New(l, delivery.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	err := e.Add(delivery.Spec{ID: id, Target: &recorder{}})
	if !errors.Is(err, delivery.ErrStopped) {
		t.Fatalf("Add after Run: %v, want ErrStopped", err)
	}
}

// TestReplaceKeepsCursorPauseAndCounts: Replace swaps a target's Target;
// what was routed meanwhile reaches the new one, the old one is closed,
// and the pause and the counts carry over.
func TestReplaceKeepsCursorPauseAndCounts(t *testing.T) {
	first := &recorder{}
	l, e := run(t, delivery.Spec{ID: id, Target: first}, delivery.Options{})
	appendRecs(t, l, put("b/k1", 1))
	waitFor(t, "first target", func() bool { return first.count() == 1 })
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, put("b/k2", 2), put("b/k3", 3))
	second := &recorder{}
	if err := e.Replace(context.Background(), delivery.Spec{ID: id, Target: second}); err != nil {
		t.Fatal(err)
	}
	if !first.closed.Load() {
		t.Fatal("the replaced Target must be closed")
	}
	s := e.Stats()[0]
	if !s.Paused || s.Delivered != 1 {
		t.Fatalf("after Replace: paused %v, delivered %d; want paused, 1", s.Paused, s.Delivered)
	}
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new target", func() bool { return second.count() == 2 })
	waitFor(t, "3 delivered", func() bool { return e.Stats()[0].Delivered == 3 })
	if first.count() != 1 {
		t.Fatalf("the old target got %d, want 1", first.count())
	}
	if err := e.Replace(context.Background(), delivery.Spec{ID: "nope", Target: &recorder{}}); !errors.Is(err, delivery.ErrUnknownTarget) {
		t.Fatalf("Replace of an unknown target: %v, want ErrUnknownTarget", err)
	}
}
