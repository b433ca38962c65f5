package relay

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
)

// ingestGate keeps ingest from crowding delivery off the CPU.
//
// Ingest is bulk work: a POST of 50 records is 100–200 µs of parsing,
// validating and encoding without a pause. Delivery is a chain of short
// hand-offs (the loop, the sender, the HTTP transport, the answer), each of
// which waits in the Go scheduler's run queue behind whatever is runnable.
// The scheduler has no priorities: with 16 busy ingest connections on 2
// cores, every hand-off waited behind up to 16 parses, a delivery with 8
// POSTs in flight became latency-bound, and a backlog grew only because
// ingest starved the drain loops (bench peers (d): delivery fell to a fifth
// of its rate without ingest).
//
// The gate bounds the requests doing that CPU work at once to slots
// (GOMAXPROCS by default: more cannot run in parallel anyway); the others
// park, in arrival order, instead of filling the run queues. A request that
// enters yields once before it starts, and again every yieldEvery records,
// so goroutines already runnable (delivery's hand-offs) go first and wait
// for at most one chunk of ingest work. Only the CPU work is gated: reading
// the body and waiting for the fsync are outside, so a slow disk or a slow
// client never holds a slot, and Publish still returns after the fsync.
type ingestGate struct {
	slots chan struct{}
	// waited counts requests that found every slot taken and parked.
	waited atomic.Uint64
}

// yieldEvery is how many records a request encodes between yields: about
// 25–50 µs of work, far under the scheduler's 10 ms time slice and short
// beside a delivery hand-off's own cost.
const yieldEvery = 16

// newIngestGate returns a gate of n slots, GOMAXPROCS for 0; nil (no gate:
// every request works at once, without yielding) for a negative n.
func newIngestGate(n int) *ingestGate {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &ingestGate{slots: make(chan struct{}, n)}
}

// errIngestBusy is enter's error when ctx ended before a slot freed: the
// relay is busier than the caller would wait (POST answers 503).
var errIngestBusy = errors.New("relay: publish: every ingest slot stayed busy (relay.ingestConcurrency)")

// enter waits for a slot, or for ctx to end (then it returns
// errIngestBusy wrapping ctx's error, and the caller must not call leave).
func (g *ingestGate) enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g.slots <- struct{}{}:
	default:
		g.waited.Add(1)
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errIngestBusy, ctx.Err())
		}
	}
	// A request woken by another's leave runs next on that core, ahead of
	// goroutines that were waiting already: yield to them first.
	runtime.Gosched()
	return nil
}

// leave frees the slot enter took.
func (g *ingestGate) leave() {
	if g != nil {
		<-g.slots
	}
}

// pace yields the core every yieldEvery records (i counts them from 0),
// between chunks of one request's work.
func (g *ingestGate) pace(i int) {
	if g != nil && i%yieldEvery == yieldEvery-1 {
		runtime.Gosched()
	}
}

// waits returns how many requests have parked for a slot.
func (g *ingestGate) waits() uint64 {
	if g == nil {
		return 0
	}
	return g.waited.Load()
}
