package relay

import (
	"context"
	"errors"
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
			for i := range 64 { // work in chunks, yielding between them
				g.pace(i)
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
	if len(g.slots) != 0 {
		t.Fatalf("%d slots still taken after every caller left", len(g.slots))
	}
}

// TestIngestGateDefaultsAndOff: 0 sizes the gate by GOMAXPROCS, -1 is no
// gate at all (every method a no-op), and -2 is refused by the config.
func TestIngestGateDefaultsAndOff(t *testing.T) {
	if g := newIngestGate(0); g == nil || cap(g.slots) < 1 {
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
		off.pace(15)
	}
	off.leave()
	if off.waits() != 0 {
		t.Fatal("a nil gate counted waits")
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
