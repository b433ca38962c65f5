package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// gateTarget holds every send until the test releases it.
type gateTarget struct {
	mu      sync.Mutex
	sends   []*gatedSend // in the order they started
	running int
	// closed is set by Close; early, if a Send was still running then.
	closed, early bool
}

type gatedSend struct {
	items   []delivery.Item
	release chan struct{}
}

func (g *gateTarget) Send(ctx context.Context, items []delivery.Item) error {
	s := &gatedSend{items: items, release: make(chan struct{})}
	g.mu.Lock()
	g.sends = append(g.sends, s)
	g.running++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateTarget) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.early = true, g.running > 0
	return nil
}

func (g *gateTarget) started() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sends)
}

// at returns the send whose first item is seq, nil if none started.
func (g *gateTarget) at(seq uint64) *gatedSend {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.sends {
		if s.items[0].Seq == seq {
			return s
		}
	}
	return nil
}

// smallWindows returns a WindowBytes that cuts windows of about n of the
// records appendN appends (their sizes differ by a few bytes).
func smallWindows(n int) int64 {
	e := targettest.Entry(targettest.Record("b", "k100", event.ObjectCreatedPut, 100), id)
	return int64(n * (len(e.Key) + len(e.Name) + len(e.Data) + 128))
}

// TestPipelineSlidesAcrossWindows: with InFlight 4 and windows of about 4
// batches, the pipeline stays full across window ends: each time the
// oldest send is answered, the next batch goes, whichever window it is
// in, while the cursor moves past each window once it is acknowledged,
// never past a send still awaited. A pipeline that empties at each
// window's end times out here.
func TestPipelineSlidesAcrossWindows(t *testing.T) {
	const batches, inFlight, maxBatch = 40, 4, 2
	g := &gateTarget{}
	l, _ := run(t, delivery.Spec{ID: id, Target: g, MaxBatch: maxBatch, Policy: delivery.Policy{InFlight: inFlight}},
		delivery.Options{WindowBytes: smallWindows(inFlight * maxBatch)})
	appendN(t, l, batches*maxBatch, batches*maxBatch) // a key each: no send waits for a key
	cursors := map[uint64]bool{}
	for r := range batches {
		want := min(r+inFlight, batches)
		// Sends start side by side: batch r's may start after later ones.
		first := uint64(r*maxBatch + 1)
		waitFor(t, fmt.Sprintf("%d sends with %d answered", want, r), func() bool { return g.started() >= want && g.at(first) != nil })
		if got := g.started(); got > want {
			t.Fatalf("%d sends started with %d answered, want %d at most (InFlight %d)", got, r, want, inFlight)
		}
		for i := range want {
			if s := g.at(uint64(i*maxBatch + 1)); s == nil || len(s.items) != maxBatch {
				t.Fatalf("batch %d of %d items not among the %d sends started: batches go in log order", i+1, maxBatch, want)
			}
		}
		s := g.at(first)
		c, _ := l.Cursor(id)
		if c > s.items[0].Seq {
			t.Fatalf("cursor %d passed seq %d, whose send is not answered", c, s.items[0].Seq)
		}
		cursors[c] = true
		close(s.release)
	}
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == batches*maxBatch+1 })
	if len(cursors) < 5 {
		t.Errorf("the cursor stood at %d places while the sends were answered, want windows passed one by one", len(cursors))
	}
}

// flakyAnswers makes r answer after a random delay (so later sends may
// return first) and fail at random: whole sends, the tail of a send, and
// for good the events whose sequence is a multiple of 97.
func flakyAnswers(r *concTarget, seed int64) {
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(seed))
	r.passable = func(seq uint64) bool { return seq%97 == 0 }
	r.delay = func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.Intn(1500)) * time.Microsecond
	}
	r.fail = func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		var fs []delivery.ItemError
		for i, it := range items {
			if it.Seq%97 == 0 {
				fs = append(fs, delivery.ItemError{Index: i, Err: delivery.Permanent(errors.New("rejected"))})
			}
		}
		switch rng.Intn(8) {
		case 0:
			return errors.New("whole send down")
		case 1:
			for i := rng.Intn(len(items)); i < len(items); i++ {
				if items[i].Seq%97 != 0 {
					fs = append(fs, delivery.ItemError{Index: i, Err: errors.New("down midway")})
				}
			}
		}
		if fs == nil {
			return nil
		}
		return &delivery.BatchError{Failed: fs}
	}
}

// checkAllOnce fails unless every sequence up to n was acknowledged, or
// quarantined when it is a multiple of 97 (flakyAnswers), and the
// quarantine holds nothing else.
func checkAllOnce(t *testing.T, r *concTarget, l *wal.Log, n int) {
	t.Helper()
	var q []wal.QuarantineEntry
	waitFor(t, "the quarantine committed", func() bool {
		var err error
		q, err = l.Quarantined(id)
		if err != nil {
			t.Fatal(err)
		}
		return len(q) >= n/97
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := map[uint64]bool{}
	for _, x := range q {
		if x.Seq%97 != 0 {
			t.Errorf("seq %d quarantined (%s), want only multiples of 97", x.Seq, x.Error)
		}
		bad[x.Seq] = true
	}
	for s := uint64(1); s <= uint64(n); s++ {
		switch {
		case s%97 == 0 && !bad[s]:
			t.Errorf("seq %d was not quarantined", s)
		case s%97 != 0 && r.acked[s] == 0:
			t.Fatalf("seq %d never acknowledged", s)
		}
	}
}

// TestSlideOrderPerKey: windows of a few batches each, a target that
// answers out of order and fails at random, whole sends, tails of sends
// and single events for good: every key's events still arrive in order
// across windows, no key is in two sends at once, the cursor never passes
// an unacknowledged item (concTarget checks both at each send), and every
// event is delivered or quarantined.
func TestSlideOrderPerKey(t *testing.T) {
	const n, keys = 3000, 40
	r := newConcTarget(t)
	flakyAnswers(r, 1)
	l, e := run(t, delivery.Spec{ID: id, Target: r, MaxBatch: 10, Policy: delivery.Policy{InFlight: 4}},
		delivery.Options{WindowBytes: smallWindows(40)})
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	appendN(t, l, n, keys)
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
	checkAllOnce(t, r, l, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	checkKeyOrder(t, r.order)
	st := e.Stats()[0]
	if want := uint64(n - n/97); st.Delivered != want || st.Quarantined != uint64(n/97) {
		t.Errorf("Delivered %d, Quarantined %d, want %d and %d", st.Delivered, st.Quarantined, want, n/97)
	}
	if st.Resent == 0 || r.maxConc < 2 {
		t.Errorf("resent %d, at most %d sends at once: want re-sends and a pipeline", st.Resent, r.maxConc)
	}
}

// TestSlideRestartsFromCursor: the engine is stopped at random moments
// while it slides over small windows under random failures, and started
// again on the log reopened from its cursor: at each stop the cursor has
// passed only acknowledged or quarantined items, and in the end every
// event was delivered at least once.
func TestSlideRestartsFromCursor(t *testing.T) {
	const n, keys = 2000, 30
	path := filepath.Join(t.TempDir(), "wal.db")
	open := func() *wal.Log {
		l, err := wal.Open(path, wal.Options{CursorSyncInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	l.Register(id)
	appendN(t, l, n, keys)
	r := newConcTarget(t)
	flakyAnswers(r, 2)
	rng := rand.New(rand.NewSource(3))
	for round := 0; ; round++ {
		r.mu.Lock()
		r.l = l
		r.mu.Unlock()
		e := delivery.New(l, delivery.Options{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, WindowBytes: smallWindows(30)})
		if err := e.Add(delivery.Spec{ID: id, Target: r, MaxBatch: 8, Policy: delivery.Policy{InFlight: 4}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		last := round == 5
		if last {
			waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
		} else {
			time.Sleep(time.Duration(5+rng.Intn(40)) * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = open()
		c, _ := l.Cursor(id)
		r.mu.Lock()
		for s := uint64(1); s < c; s++ {
			if r.acked[s] == 0 && s%97 != 0 {
				r.mu.Unlock()
				t.Fatalf("round %d: cursor %d after a restart passed seq %d, never acknowledged", round, c, s)
			}
		}
		r.mu.Unlock()
		t.Logf("round %d: cursor %d", round, c)
		if last {
			break
		}
	}
	defer l.Close()
	checkAllOnce(t, r, l, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	checkKeyOrder(t, r.order)
}

// storeTarget is a namespace store: the newest event of each key, which a
// write must never set back to an older one.
type storeTarget struct {
	t    *testing.T
	mu   sync.Mutex
	rows map[string]uint64
	rng  *rand.Rand
}

func (s *storeTarget) Send(_ context.Context, items []delivery.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Intn(6) == 0 {
		return errors.New("store down")
	}
	for _, it := range items {
		if it.Seq < s.rows[it.Key] {
			s.t.Errorf("key %s set back from seq %d to %d", it.Key, s.rows[it.Key], it.Seq)
		}
		s.rows[it.Key] = it.Seq
	}
	return nil
}

func (s *storeTarget) Close() error { return nil }

// TestSlideNamespace: a namespace target with batches in flight slides
// over small coalescing windows under failures: no row is ever set back,
// each ends at its key's newest event, and every record counts as
// delivered, the coalesced-away ones included.
func TestSlideNamespace(t *testing.T) {
	const n, keys = 3000, 60
	s := &storeTarget{t: t, rows: map[string]uint64{}, rng: rand.New(rand.NewSource(4))}
	l, e := run(t, delivery.Spec{ID: id, Target: s, Namespace: true, MaxBatch: 5, Policy: delivery.Policy{InFlight: 4}},
		delivery.Options{CoalesceEvents: 50})
	newest := map[string]uint64{}
	for i := range n {
		newest[fmt.Sprintf("b/k%d", i%keys)] = uint64(i + 1)
	}
	appendN(t, l, n, keys)
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, want := range newest {
		if got := s.rows[k]; got != want {
			t.Errorf("row %s at seq %d, want %d", k, got, want)
		}
	}
	if st := e.Stats()[0]; st.Delivered != n {
		t.Errorf("Delivered %d, want %d", st.Delivered, n)
	}
}

// TestSlidePause: a pause while the pipeline slides sends nothing new;
// the sends in flight finish, and after Resume the rest goes, every event
// delivered.
func TestSlidePause(t *testing.T) {
	const n, maxBatch = 80, 2
	g := &gateTarget{}
	l, e := run(t, delivery.Spec{ID: id, Target: g, MaxBatch: maxBatch, Policy: delivery.Policy{InFlight: 4}},
		delivery.Options{WindowBytes: smallWindows(8)})
	appendN(t, l, n, n)
	waitFor(t, "4 sends", func() bool { return g.started() == 4 })
	if err := e.Pause(id); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		close(g.at(uint64(i*maxBatch + 1)).release)
	}
	waitFor(t, "the cursor past the sends answered", func() bool { c, _ := l.Cursor(id); return c > 1 })
	// Nothing new may start while paused; give a wrong loop time to show.
	time.Sleep(200 * time.Millisecond)
	if got := g.started(); got != 4 {
		t.Fatalf("%d sends started, want the 4 in flight at the pause only", got)
	}
	if st := e.Stats()[0]; st.State != delivery.StatePaused {
		t.Errorf("state %q, want %q", st.State, delivery.StatePaused)
	}
	if err := e.Resume(id); err != nil {
		t.Fatal(err)
	}
	released := 4
	waitFor(t, "the cursor past the last", func() bool {
		g.mu.Lock()
		for ; released < len(g.sends); released++ {
			close(g.sends[released].release)
		}
		g.mu.Unlock()
		c, _ := l.Cursor(id)
		return c == n+1
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[uint64]bool{}
	for _, s := range g.sends {
		for _, it := range s.items {
			seen[it.Seq] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d events sent, want %d", len(seen), n)
	}
}

// TestSlideRedrive: quarantined events re-driven while a backlog slides
// through the pipeline are delivered between windows and leave the
// quarantine; the backlog is delivered too.
func TestSlideRedrive(t *testing.T) {
	const first, more = 200, 2000
	r := newConcTarget(t)
	var mu sync.Mutex
	rejecting := true
	bad := func(seq uint64) bool { return seq <= first && seq%50 == 0 }
	r.passable = bad
	r.fail = func(items []delivery.Item) error {
		mu.Lock()
		defer mu.Unlock()
		var fs []delivery.ItemError
		for i, it := range items {
			if rejecting && bad(it.Seq) {
				fs = append(fs, delivery.ItemError{Index: i, Err: delivery.Permanent(errors.New("400 bad mapping"))})
			}
		}
		if fs == nil {
			return nil
		}
		return &delivery.BatchError{Failed: fs}
	}
	r.delay = func() time.Duration { return time.Duration(rand.Intn(300)) * time.Microsecond }
	l, e := run(t, delivery.Spec{ID: id, Target: r, MaxBatch: 10, Policy: delivery.Policy{InFlight: 4}},
		delivery.Options{WindowBytes: smallWindows(40)})
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	appendN(t, l, first, first)
	q := quarantine(t, l, first/50)
	mu.Lock()
	rejecting = false
	mu.Unlock()
	appendN(t, l, more, first)
	if n, err := e.Redrive(id, q); err != nil || n != len(q) {
		t.Fatalf("Redrive = %d, %v; want %d queued", n, err, len(q))
	}
	quarantine(t, l, 0)
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == first+more+1 })
	waitFor(t, "every event", func() bool { return r.delivered() == first+more })
	if st := e.Stats()[0]; st.Redriven != uint64(len(q)) {
		t.Errorf("Redriven %d, want %d", st.Redriven, len(q))
	}
}

// TestSlideMemoryIsBounded: a backlog of 2 KB records far larger than a
// window drains through a sliding pipeline with a live heap of a few
// windows (WindowBytes 4 MiB), not of the backlog: windows passed by the
// cursor are let go, and no more than two are held.
//
// The bound: two windows of 4 MiB, and what the log and the reads hold
// besides (about 18 MiB, whatever the window: the frames being read and
// decompressed); 40 MiB leaves room for garbage not yet collected on a
// loaded machine, below the 60-120 MB of the backlog.
func TestSlideMemoryIsBounded(t *testing.T) {
	records := 60_000
	if raceEnabled {
		records = 30_000
	}
	const size, bound = 2 << 10, 40 << 20
	l := openLog(t)
	l.Register(id)
	appendPadded(t, l, records, records, size)
	var got atomic.Int64
	base := heapPeak()()
	peak := heapPeak()
	e, _ := runEngine(t, l, delivery.Options{WindowBytes: 4 << 20},
		delivery.Spec{ID: id, MaxBatch: 1000, Policy: delivery.Policy{InFlight: 4}, Target: &fakeTarget{send: func(items []delivery.Item) error {
			got.Add(int64(len(items)))
			return nil
		}}})
	for deadline := time.Now().Add(2 * time.Minute); e.Stats()[0].Pending != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still pending after 2 minutes", e.Stats()[0].Pending)
		}
	}
	p := peak()
	t.Logf("heap peak %.1f MiB while draining %d records of %d B, %.1f MiB before", float64(p)/(1<<20), records, size, float64(base)/(1<<20))
	if p > bound {
		t.Fatalf("heap peaked at %.1f MiB, want under %d MiB", float64(p)/(1<<20), bound>>20)
	}
	if n := got.Load(); n != int64(records) {
		t.Fatalf("%d events sent, want %d", n, records)
	}
}

// TestSlideMaxAge: a sliding pipeline quarantines what is past MaxAge
// when its window is taken, without sending it, and delivers the rest.
func TestSlideMaxAge(t *testing.T) {
	const old, fresh, maxAge = 300, 1200, 2 * time.Second
	l := openLog(t)
	l.Register(id)
	appendN(t, l, old, old)
	time.Sleep(maxAge + 100*time.Millisecond) // the first events age past MaxAge before the engine starts
	var mu sync.Mutex
	var sent []uint64
	e, _ := runEngine(t, l, delivery.Options{}, delivery.Spec{ID: id, MaxBatch: 50,
		Policy: delivery.Policy{InFlight: 4, MaxAge: maxAge},
		Target: &fakeTarget{send: func(items []delivery.Item) error {
			mu.Lock()
			defer mu.Unlock()
			for _, it := range items {
				sent = append(sent, it.Seq)
			}
			return nil
		}}})
	appendN(t, l, fresh, old)
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == old+fresh+1 })
	if st := e.Stats()[0]; st.Quarantined != old || st.Delivered != fresh {
		t.Errorf("Quarantined %d, Delivered %d, want %d and %d", st.Quarantined, st.Delivered, old, fresh)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sent {
		if s <= old {
			t.Fatalf("seq %d sent, want every event past MaxAge quarantined unsent", s)
		}
	}
	if len(sent) < fresh {
		t.Fatalf("%d events sent, want %d", len(sent), fresh)
	}
}

// TestSlideRateLimit: batches in flight across windows share the rate
// limit: no more events go in a span than the bucket holds plus the rate
// over the span.
func TestSlideRateLimit(t *testing.T) {
	const n, rate = 1200, 400.0
	var mu sync.Mutex
	var stamps []time.Time
	l, _ := run(t, delivery.Spec{ID: id, MaxBatch: 50, Policy: delivery.Policy{InFlight: 4, RateLimit: rate},
		Target: &fakeTarget{send: func(items []delivery.Item) error {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for range items {
				stamps = append(stamps, now)
			}
			return nil
		}}}, delivery.Options{})
	appendN(t, l, n, n)
	waitFor(t, "the cursor past the last", func() bool { c, _ := l.Cursor(id); return c == n+1 })
	mu.Lock()
	defer mu.Unlock()
	// The bucket holds half a second's worth; each span from the first
	// send on may see that much plus the rate over the span.
	burst := rate / 2
	for i := range stamps {
		for j := i; j < len(stamps); j += 25 {
			span := stamps[j].Sub(stamps[i]).Seconds()
			if got := float64(j - i + 1); got > burst+rate*span+1 {
				t.Fatalf("%.0f events sent in %.3f s, want at most %.0f (rate %v/s)", got, span, burst+rate*span, rate)
			}
		}
	}
}

// TestSlideRemoveWaitsForSends: Remove of a target whose pipeline has
// sends of two windows in flight returns only once they ended, then
// closes the target, and nothing is sent after.
func TestSlideRemoveWaitsForSends(t *testing.T) {
	const maxBatch = 2
	g := &gateTarget{}
	l, e := run(t, delivery.Spec{ID: id, Target: g, MaxBatch: maxBatch, Policy: delivery.Policy{InFlight: 4}},
		delivery.Options{WindowBytes: smallWindows(4 * maxBatch), ShutdownGrace: time.Minute})
	appendN(t, l, 80, 80)
	waitFor(t, "4 sends", func() bool { return g.started() == 4 })
	for i := range 2 {
		close(g.at(uint64(i*maxBatch + 1)).release)
	}
	waitFor(t, "6 sends", func() bool { return g.started() == 6 })
	removed := make(chan error, 1)
	go func() { removed <- e.Remove(context.Background(), id) }()
	time.Sleep(100 * time.Millisecond) // a wrong Remove returns meanwhile
	select {
	case err := <-removed:
		t.Fatalf("Remove returned %v with 4 sends in flight, want it to wait for them", err)
	default:
	}
	for i := 2; i < 6; i++ {
		close(g.at(uint64(i*maxBatch + 1)).release)
	}
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running != 0 || !g.closed || g.early {
		t.Fatalf("after Remove: %d sends running, closed %v (while sending: %v); want none running, closed after", g.running, g.closed, g.early)
	}
	if len(g.sends) != 6 {
		t.Fatalf("%d sends, want the 6 started before Remove", len(g.sends))
	}
}
