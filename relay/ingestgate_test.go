package relay

import (
	"fmt"

	"context"
	"errors"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestIngestGateBoundsWork: at most slots requests are inside the gate at
// once however many arrive; the others park (and are counted) and all get
// through in the end.
func TestIngestGateBoundsWork(t *testing.T) {
	const slots, callers = 2, 16
	g := newIngestGate(slots)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := g.enter(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			// Hold the slot until someone parked (16 callers, 2 slots:
			// someone will), so the test sees the gate shut.
			for deadline := time.Now().Add(5 * time.Second); g.waits() == 0 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
			inside.Add(-1)
			g.leave()
		}()
	}
	close(start)
	wg.Wait()
	if m := most.Load(); m < 1 || m > slots {
		t.Fatalf("%d callers inside at once, want 1 to %d", m, slots)
	}
	if g.waits() == 0 {
		t.Fatalf("no caller waited for a slot: %d callers, %d slots", callers, slots)
	}
	if g.busy != 0 || len(g.queue) != 0 {
		t.Fatalf("%d slots taken, %d parked after every caller left", g.busy, len(g.queue))
	}
}

// TestIngestGateDefaultsAndOff: 0 sizes the gate by GOMAXPROCS, -1 is no
// gate at all (every method a no-op), and -2 is refused by the config.
func TestIngestGateDefaultsAndOff(t *testing.T) {
	if g := newIngestGate(0); g == nil || g.slots != runtime.GOMAXPROCS(0) || g.width() != g.slots {
		t.Fatalf("newIngestGate(0) = %v, want GOMAXPROCS slots", g)
	}
	var off *ingestGate = newIngestGate(-1)
	if off != nil {
		t.Fatalf("newIngestGate(-1) = %v, want nil", off)
	}
	for range 3 { // never blocks, never counts
		if err := off.enter(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	off.leave()
	if off.waits() != 0 || off.width() != 0 || off.heldBack() != 0 {
		t.Fatal("a nil gate counted waits or has a width")
	}
	_, err := ParseConfig([]byte(`{"relay":{"ingestConcurrency":-2}}`))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Path != "relay.ingestConcurrency" {
		t.Fatalf("ingestConcurrency -2: %v, want a ConfigError naming relay.ingestConcurrency", err)
	}
	if _, err := ParseConfig([]byte(`{"relay":{"ingestConcurrency":-1}}`)); err != nil {
		t.Fatalf("ingestConcurrency -1: %v", err)
	}
}

// TestIngestWaitsForSlot: with every slot taken (by a request parsing a
// huge body, here held by the test), a POST parks instead of parsing; if
// no slot frees within fullWait it is answered 503 with Retry-After and
// nothing is logged, a Publish returns errIngestBusy; once the slot frees,
// both go through. relay_ingest_waits_total counts the parked requests.
func TestIngestWaitsForSlot(t *testing.T) {
	r := ackRelay(t, `,"ingestConcurrency":1,"fullWait":"300ms"`)
	h := r.Handler()
	if err := r.gate.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := do(t, h, "POST", "/v1/events", bodyOf(t, 0, 3))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "ingestConcurrency") {
		t.Fatalf("POST with the only slot taken: %d %q (Retry-After %q), want 503 naming relay.ingestConcurrency with Retry-After", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := r.Publish(ctx, records("images", 3, 2)...)
	cancel()
	if !errors.Is(err, errIngestBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with the only slot taken: %v, want errIngestBusy wrapping the deadline", err)
	}
	if n := r.log.LastSeq(); n != 0 {
		t.Fatalf("the log holds records up to %d after two refused requests, want none", n)
	}

	// A request parked while the slot is held goes through once it frees.
	done := make(chan int, 1)
	go func() { done <- do(t, h, "POST", "/v1/events", bodyOf(t, 5, 4)).Code }()
	deadline := time.Now().Add(10 * time.Second)
	for r.gate.waits() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := r.gate.waits(); n < 3 {
		t.Fatalf("%d waits counted, want 3 (two refused, one parked)", n)
	}
	r.gate.leave()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("parked POST: %d, want 200 once the slot freed", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("parked POST did not finish after the slot freed")
	}
	if err := r.Publish(context.Background(), records("images", 9, 2)...); err != nil {
		t.Fatal(err)
	}
	m := do(t, h, "GET", "/metrics", "").Body.String()
	if !strings.Contains(m, "relay_ingest_waits_total 3\n") {
		t.Fatalf("metrics: %q, want relay_ingest_waits_total 3", grepLines(m, "relay_ingest_waits"))
	}
}

// TestIngestGateNarrow: narrowed, the gate lets one request fewer in;
// widened again, it lets the parked one in at once. A request whose
// context ends while parked leaves no trace.
func TestIngestGateNarrow(t *testing.T) {
	g := newIngestGate(2)
	if n := g.narrow(true); n != 1 {
		t.Fatalf("narrowed width %d, want 1", n)
	}
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := g.enter(ctx)
	cancel()
	if !errors.Is(err, errIngestBusy) {
		t.Fatalf("second request on a narrowed gate of 2: %v, want errIngestBusy", err)
	}
	in := make(chan struct{})
	go func() {
		if err := g.enter(context.Background()); err != nil {
			t.Error(err)
		}
		close(in)
	}()
	waitUntil(t, "the third request parked", func() bool { return g.waits() == 2 })
	if n := g.narrow(false); n != 2 {
		t.Fatalf("widened width %d, want 2", n)
	}
	select {
	case <-in:
	case <-time.After(10 * time.Second):
		t.Fatal("the parked request did not get the slot the widening freed")
	}
	g.leave()
	g.leave()
	if g.busy != 0 || len(g.queue) != 0 {
		t.Fatalf("%d slots taken, %d parked at the end", g.busy, len(g.queue))
	}
	if g.narrow(true) != 1 || newIngestGate(1).narrow(true) != 1 {
		t.Fatal("a gate is never narrowed below 1 slot")
	}
}

// slowTarget acknowledges every item after a delay of its own (a target
// that is up and slower than ingest) until fast is set, or fails every
// send while down is set.
type slowTarget struct {
	fast, down atomic.Bool
}

func (s *slowTarget) Send(ctx context.Context, items []delivery.Item) error {
	if s.down.Load() {
		return errors.New("slowtarget: down")
	}
	if s.fast.Load() {
		return nil
	}
	select {
	case <-time.After(time.Duration(len(items)) * 2 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (s *slowTarget) Close() error { return nil }

// governedRelay opens a relay with 4 ingest slots whose one target is tgt.
func governedRelay(t *testing.T, tgt delivery.Target) *Relay {
	t.Helper()
	c, err := ParseConfig([]byte(`{"relay":{"dataDir":"` + t.TempDir() + `","ingestConcurrency":4,"maxBackoff":"200ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(c, Options{Targets: map[string]delivery.Target{ackARN: tgt}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: ackARN, Events: []event.Name{"s3:ObjectCreated:*"}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// publishUntil publishes 200 records a call from 4 goroutines until stop
// is closed; it returns how many records were published.
func publishUntil(t *testing.T, r *Relay, stop <-chan struct{}) func() int64 {
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				from := int(n.Add(200)) - 200
				if err := r.Publish(context.Background(), records("images", from, 200)...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	return func() int64 { wg.Wait(); return n.Load() }
}

func pendingOf(r *Relay) (int64, bool) {
	for _, s := range r.eng.Stats() {
		if s.ID == ackARN {
			return s.Pending, s.Up
		}
	}
	return 0, false
}

// TestIngestHeldBackWhileTargetFallsBehind: with a target that is up and
// slower than ingest, the governor narrows the gate by one slot while the
// backlog grows, counts it in relay_ingest_held_back_total and
// relay_ingest_slots, and widens it once the backlog is drained. Every
// record is delivered: holding back drops nothing.
func TestIngestHeldBackWhileTargetFallsBehind(t *testing.T) {
	tgt := &slowTarget{}
	r := governedRelay(t, tgt)
	stop := make(chan struct{})
	wait := publishUntil(t, r, stop)
	waitUntil(t, "ingest held back", func() bool { return r.gate.width() == 3 })
	m := do(t, r.Handler(), "GET", "/metrics", "").Body.String()
	close(stop)
	published := wait()
	// One episode, or more if a large batch's acknowledgement took the
	// backlog under the threshold for a moment on a slow machine.
	if !strings.Contains(m, "relay_ingest_slots 3\n") || heldBackTotal(t, m) < 1 {
		t.Fatalf("metrics while held back: %q, want relay_ingest_slots 3 and relay_ingest_held_back_total at least 1", grepLines(m, "relay_ingest_"))
	}
	tgt.fast.Store(true) // the target catches up
	waitUntil(t, "the gate widened once the backlog drained", func() bool { return r.gate.width() == 4 })
	waitUntil(t, "every record delivered", func() bool { p, _ := pendingOf(r); return p == 0 })
	m = do(t, r.Handler(), "GET", "/metrics", "").Body.String()
	if !strings.Contains(m, "relay_ingest_slots 4\n") || heldBackTotal(t, m) < 1 {
		t.Fatalf("metrics after the drain: %q, want relay_ingest_slots 4 and the episodes counted", grepLines(m, "relay_ingest_"))
	}
	if !strings.Contains(m, fmt.Sprintf(`relay_target_delivered_total{target="%s"} %d`, ackARN, published)) {
		t.Fatalf("delivered: %q, want all %d published", grepLines(m, "relay_target_delivered_total"), published)
	}
}

// TestIngestNotHeldBackWhileTargetDown: a target that is down gathers a
// growing backlog at full ingest speed: the gate is never narrowed.
func TestIngestNotHeldBackWhileTargetDown(t *testing.T) {
	tgt := &slowTarget{}
	tgt.down.Store(true)
	r := governedRelay(t, tgt)
	if err := r.Publish(context.Background(), records("images", 0, 1)...); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the target down", func() bool { _, up := pendingOf(r); return !up })
	stop := make(chan struct{})
	wait := publishUntil(t, r, stop)
	// The backlog grows past the governor's threshold for several of its
	// looks.
	waitUntil(t, "a backlog", func() bool { p, _ := pendingOf(r); return p >= 2*governMinBacklog })
	time.Sleep(5 * governEvery)
	waitUntil(t, "a larger backlog", func() bool { p, _ := pendingOf(r); return p >= 4*governMinBacklog })
	close(stop)
	wait()
	if w, n := r.gate.width(), r.gate.heldBack(); w != 4 || n != 0 {
		t.Fatalf("with the target down: width %d, %d episodes; want 4 and 0", w, n)
	}
}

// heldBackTotal reads relay_ingest_held_back_total from a scrape.
func heldBackTotal(t *testing.T, metrics string) int {
	t.Helper()
	var n int
	for _, l := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(l, "relay_ingest_held_back_total "); ok {
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("relay_ingest_held_back_total %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no relay_ingest_held_back_total in the scrape")
	return 0
}
