package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// concTarget is a concurrent fake target: it keeps every item it
// acknowledged, in the order it acknowledged them, and checks what the
// engine promises a target taking several sends at once.
type concTarget struct {
	t  *testing.T
	l  *wal.Log
	mu sync.Mutex
	// fail, if set, decides the answer to a send (nil delivers it all).
	fail  func(items []delivery.Item) error
	delay func() time.Duration
	// passable, if set, names the sequences the cursor may pass without
	// an acknowledgement: the ones quarantined.
	passable func(seq uint64) bool
	inFlight map[string]int // keys of the sends in flight
	sending  int
	maxConc  int
	acked    map[uint64]int // seq -> times acknowledged
	order    []delivery.Item
	sent     int
}

func newConcTarget(t *testing.T) *concTarget {
	return &concTarget{t: t, inFlight: map[string]int{}, acked: map[uint64]int{}}
}

func (r *concTarget) Close() error { return nil }

func (r *concTarget) Send(_ context.Context, items []delivery.Item) error {
	r.mu.Lock()
	r.sending++
	r.maxConc = max(r.maxConc, r.sending)
	r.sent += len(items)
	for _, it := range items {
		if r.inFlight[it.Key] > 0 {
			r.t.Errorf("key %s in two sends at once", it.Key)
		}
	}
	for _, it := range items {
		r.inFlight[it.Key]++
	}
	r.checkCursor()
	fail := r.fail
	r.mu.Unlock()
	if r.delay != nil {
		time.Sleep(r.delay())
	}
	var err error
	if fail != nil {
		err = fail(items)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sending--
	for _, it := range items {
		r.inFlight[it.Key]--
	}
	var be *delivery.BatchError
	bad := map[int]bool{}
	switch {
	case errors.As(err, &be):
		for _, f := range be.Failed {
			bad[f.Index] = true
		}
	case err != nil:
		return err
	}
	for i, it := range items {
		if !bad[i] {
			r.acked[it.Seq]++
			r.order = append(r.order, it)
		}
	}
	return err
}

// checkCursor fails the test if the log's cursor passed a sequence the
// target never acknowledged. r.mu is held.
func (r *concTarget) checkCursor() {
	if r.l == nil {
		return
	}
	c, _ := r.l.Cursor(id)
	for s := uint64(1); s < c; s++ {
		if r.acked[s] == 0 && (r.passable == nil || !r.passable(s)) {
			r.t.Errorf("cursor %d passed %d, never acknowledged", c, s)
			return
		}
	}
}

func (r *concTarget) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

func appendN(t *testing.T, l *wal.Log, n, keys int) {
	t.Helper()
	recs := make([]event.Record, n)
	for i := range recs {
		recs[i] = targettest.Record("b", fmt.Sprintf("k%d", i%keys), event.ObjectCreatedPut, i)
	}
	appendRecs(t, l, recs...)
}

// checkKeyOrder fails if any key's events were acknowledged out of log
// order, re-sends aside: a re-send repeats a suffix, so the last time
// each sequence was acknowledged must follow the log's order per key.
func checkKeyOrder(t *testing.T, order []delivery.Item) {
	t.Helper()
	last := map[uint64]int{}
	for i, it := range order {
		last[it.Seq] = i
	}
	byKey := map[string]uint64{}
	for i, it := range order {
		if last[it.Seq] != i {
			continue
		}
		if prev := byKey[it.Key]; prev > it.Seq {
			t.Fatalf("key %s: seq %d acknowledged after %d", it.Key, it.Seq, prev)
		}
		byKey[it.Key] = it.Seq
	}
}

// TestPipelineGoesBack: with several batches in flight, a failure in one
// batch re-sends from its first unacknowledged item; nothing is lost, the
// cursor never passes an unacknowledged item, and the re-sends are
// counted.
func TestPipelineGoesBack(t *testing.T) {
	const n = 2000
	r := newConcTarget(t)
	var sends atomic.Int64
	r.delay = func() time.Duration { return time.Duration(rand.Intn(500)) * time.Microsecond }
	r.fail = func(items []delivery.Item) error {
		k := sends.Add(1)
		switch {
		case k%7 == 3:
			return errors.New("whole batch down")
		case k%11 == 5:
			// The first half went through, then the target failed.
			var fs []delivery.ItemError
			for i := len(items) / 2; i < len(items); i++ {
				fs = append(fs, delivery.ItemError{Index: i, Err: errors.New("down midway")})
			}
			return &delivery.BatchError{Failed: fs}
		}
		return nil
	}
	l, e := run(t, delivery.Spec{ID: id, Target: r, MaxBatch: 20, Policy: delivery.Policy{InFlight: 4}}, delivery.Options{})
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	appendN(t, l, n, 97)
	waitFor(t, "every event", func() bool { return r.delivered() == n })
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := uint64(1); s <= n; s++ {
		if r.acked[s] == 0 {
			t.Fatalf("seq %d never acknowledged", s)
		}
	}
	if r.maxConc < 2 {
		t.Errorf("at most %d sends at once, want several", r.maxConc)
	}
	dups := len(r.order) - n
	st := e.Stats()[0]
	if st.Resent == 0 || dups == 0 {
		t.Errorf("resent %d, duplicates %d: want some after failures in a pipeline", st.Resent, dups)
	}
	if uint64(dups) > st.Resent {
		t.Errorf("got %d duplicates, more than the %d items resent", dups, st.Resent)
	}
	if st.Delivered != n {
		t.Errorf("Delivered = %d, want %d", st.Delivered, n)
	}
	checkKeyOrder(t, r.order)
	t.Logf("sends at once: %d, duplicates: %d, resent: %d", r.maxConc, dups, st.Resent)
}

// TestLanesOrderPerKey: lanes answer out of order and fail at random, and
// every key's events still arrive in order, all of them.
func TestLanesOrderPerKey(t *testing.T) {
	const n = 3000
	r := newConcTarget(t)
	r.delay = func() time.Duration { return time.Duration(rand.Intn(2000)) * time.Microsecond }
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(1))
	r.fail = func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		if rng.Intn(5) == 0 {
			at := rng.Intn(len(items))
			var fs []delivery.ItemError
			for i := at; i < len(items); i++ {
				fs = append(fs, delivery.ItemError{Index: i, Err: errors.New("random failure")})
			}
			return &delivery.BatchError{Failed: fs}
		}
		return nil
	}
	l, e := run(t, delivery.Spec{ID: id, Target: r, MaxBatch: 10, Policy: delivery.Policy{Lanes: 8}}, delivery.Options{})
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	appendN(t, l, n, 50)
	waitFor(t, "every event", func() bool { return r.delivered() == n })
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.maxConc < 2 {
		t.Errorf("at most %d sends at once, want lanes side by side", r.maxConc)
	}
	checkKeyOrder(t, r.order)
	if st := e.Stats()[0]; st.Quarantined != 0 {
		t.Errorf("quarantined %d, want 0", st.Quarantined)
	}
}

// TestMaxAgeExpires: an event older than its target's MaxAge is
// quarantined as expired instead of being retried on.
func TestMaxAgeExpires(t *testing.T) {
	down := errors.New("down")
	var sent atomic.Int64
	l, e := run(t, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		sent.Add(int64(len(items)))
		return down
	}}, Policy: delivery.Policy{MaxAge: 100 * time.Millisecond}}, delivery.Options{})
	appendN(t, l, 3, 3)
	waitFor(t, "quarantine", func() bool { return e.Stats()[0].Quarantined == 3 })
	var q []wal.QuarantineEntry
	waitFor(t, "quarantine committed", func() bool { q, _ = l.Quarantined(id); return len(q) == 3 })
	for _, x := range q {
		if !strings.Contains(x.Error, "expired") {
			t.Errorf("seq %d quarantined with %q, want expired", x.Seq, x.Error)
		}
	}
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == 4 })
	if sent.Load() == 0 {
		t.Errorf("nothing was tried before the events expired")
	}
}

// TestMaxAgeBeforeSend: an event already past MaxAge when read is never
// sent.
func TestMaxAgeBeforeSend(t *testing.T) {
	var sent atomic.Int64
	target := &fakeTarget{send: func(items []delivery.Item) error { sent.Add(int64(len(items))); return nil }}
	l, err := wal.Open(t.TempDir()+"/wal.db", wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Register(id)
	appendN(t, l, 5, 5)
	time.Sleep(60 * time.Millisecond) // the events age past MaxAge before the engine starts
	e := delivery.New(l, delivery.Options{MinBackoff: time.Millisecond})
	if err := e.Add(delivery.Spec{ID: id, Target: target, Policy: delivery.Policy{MaxAge: 50 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "quarantine", func() bool { return e.Stats()[0].Quarantined == 5 })
	if got := sent.Load(); got != 0 {
		t.Fatalf("sent %d expired events, want 0", got)
	}
	q, _ := l.Quarantined(id)
	for _, x := range q {
		if !strings.HasPrefix(x.Error, delivery.ErrExpired.Error()) {
			t.Errorf("reason %q, want %q…", x.Error, delivery.ErrExpired)
		}
	}
}

// TestTargetMaxAttempts: a target's MaxAttempts overrides the engine's,
// both ways.
func TestTargetMaxAttempts(t *testing.T) {
	down := errors.New("down")
	t.Run("set", func(t *testing.T) {
		var tries atomic.Int64
		l, e := run(t, delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error { tries.Add(1); return down }},
			Policy: delivery.Policy{MaxAttempts: 3}}, delivery.Options{})
		appendN(t, l, 1, 1)
		waitFor(t, "quarantine", func() bool { return e.Stats()[0].Quarantined == 1 })
		var q []wal.QuarantineEntry
		waitFor(t, "quarantine committed", func() bool { q, _ = l.Quarantined(id); return len(q) == 1 })
		if q[0].Attempts != 3 || tries.Load() != 3 {
			t.Fatalf("got %d attempts recorded, %d sends, want 3 and 3", q[0].Attempts, tries.Load())
		}
	})
	t.Run("forever", func(t *testing.T) {
		var tries atomic.Int64
		l, e := run(t, delivery.Spec{ID: id, Target: &fakeTarget{send: func([]delivery.Item) error { tries.Add(1); return down }},
			Policy: delivery.Policy{MaxAttempts: -1}}, delivery.Options{MaxAttempts: 2})
		appendN(t, l, 1, 1)
		waitFor(t, "10 tries", func() bool { return tries.Load() >= 10 })
		if q := e.Stats()[0].Quarantined; q != 0 {
			t.Fatalf("quarantined %d after %d tries, want 0: the target retries forever", q, tries.Load())
		}
	})
}

// TestRateLimit: a target's rate limit holds within 10 % over 10 s of a
// backlog the target could take much faster.
func TestRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s timing test")
	}
	const rate, over = 200.0, 10 * time.Second
	var mu sync.Mutex
	var stamps []time.Time
	l, _ := run(t, delivery.Spec{ID: id, Target: &fakeTarget{send: func(items []delivery.Item) error {
		now := time.Now()
		mu.Lock()
		for range items {
			stamps = append(stamps, now)
		}
		mu.Unlock()
		return nil
	}}, Policy: delivery.Policy{RateLimit: rate}}, delivery.Options{})
	appendN(t, l, int(rate*over.Seconds()*2), 1000)
	var t0 time.Time
	waitFor(t, "the first send", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(stamps) > 0 {
			t0 = stamps[0]
		}
		return len(stamps) > 0
	})
	deadline := t0.Add(over)
	time.Sleep(time.Until(deadline) + 50*time.Millisecond)
	mu.Lock()
	n := 0
	for _, s := range stamps {
		if s.Before(deadline) {
			n++
		}
	}
	mu.Unlock()
	want := rate * over.Seconds()
	if f := float64(n) / want; f < 0.9 || f > 1.1 {
		t.Fatalf("got %d events in %s, want %.0f ± 10 %%", n, over, want)
	}
	t.Logf("%d events in %s (limit %.0f/s)", n, over, rate)
}
