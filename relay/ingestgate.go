package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The ingest gate keeps ingest from starving delivery of the CPU.
//
// Ingest is bulk work: a POST of 50 records is 100–200 µs of parsing,
// validating and encoding without a pause. Delivery is a chain of short
// hand-offs (the loop, the sender, the HTTP transport, the target's answer
// coming back through the network poller). Go's scheduler has no
// priorities, and it looks at the network poller only when a core runs out
// of runnable goroutines (or every 10 ms from its monitor): with 16
// connections posting flat out on 2 cores, neither core ever ran out,
// every answer a target sent waited up to 10 ms to be noticed, and a
// delivery with 8 POSTs in flight fell to a fifth of its rate (bench peers
// (d)): a backlog grew only because ingest starved the drain loops.
//
// The gate bounds the requests doing that CPU work at once (slots,
// GOMAXPROCS by default: more cannot run in parallel anyway); the others
// park in arrival order instead of filling the run queues. While a target
// that is up and not paused has a backlog that grows, the governor
// (governIngest) narrows the gate to one slot less (at least 1), so one
// core is left to delivery and to the network poller; it widens it again
// once every such backlog is drained, or its target is down or paused.
// Ingest is never narrowed for a target that is down: buffering an
// outage at full speed is the relay's job. Only the CPU work is gated:
// reading the body and waiting for the fsync are outside, so a slow client
// or disk holds no slot, and Publish still returns after the fsync.
type ingestGate struct {
	slots int // configured; the width when not narrowed

	mu    sync.Mutex
	limit int             // current width
	busy  int             // slots taken
	queue []chan struct{} // parked requests, oldest first; closed when given a slot

	waited   atomic.Uint64 // requests that parked
	narrowed atomic.Uint64 // episodes the governor narrowed the gate
}

// newIngestGate returns a gate of n slots, GOMAXPROCS for 0; nil (no gate:
// every request works at once) for a negative n.
func newIngestGate(n int) *ingestGate {
	if n < 0 {
		return nil
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &ingestGate{slots: n, limit: n}
}

// errIngestBusy is enter's error when ctx ended before a slot freed: the
// relay is busier than the caller would wait (POST answers 503).
var errIngestBusy = errors.New("relay: publish: no ingest slot (relay.ingestConcurrency) freed in time")

// enter waits for a slot, or for ctx to end (then it returns
// errIngestBusy wrapping ctx's error, and the caller must not call leave).
func (g *ingestGate) enter(ctx context.Context) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if g.busy < g.limit && len(g.queue) == 0 {
		g.busy++
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	g.queue = append(g.queue, ch)
	g.waited.Add(1)
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.queue, ch); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
		g.mu.Unlock()
	} else {
		// Given a slot as ctx ended: hand it on.
		g.busy--
		g.grant()
		g.mu.Unlock()
	}
	return fmt.Errorf("%w: %w", errIngestBusy, ctx.Err())
}

// leave frees the slot enter took.
func (g *ingestGate) leave() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.busy--
	g.grant()
	g.mu.Unlock()
}

// grant gives free slots to parked requests, oldest first. g.mu is held.
func (g *ingestGate) grant() {
	for g.busy < g.limit && len(g.queue) > 0 {
		close(g.queue[0])
		g.queue = g.queue[1:]
		g.busy++
	}
}

// narrow sets the width to one slot less than configured (at least 1) when
// on, back to the configured width when not. It reports the new width.
// Requests already working finish; the narrower width applies to the next.
func (g *ingestGate) narrow(on bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.limit = g.slots
	if on {
		g.limit = max(1, g.slots-1)
	}
	g.grant()
	return g.limit
}

// width returns the current number of slots; 0 without a gate.
func (g *ingestGate) width() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// waits returns how many requests have parked for a slot.
func (g *ingestGate) waits() uint64 {
	if g == nil {
		return 0
	}
	return g.waited.Load()
}

// governEvery is how often the governor looks at the targets' backlogs:
// often enough to react within a fraction of a second, rarely enough that
// reading every target's figures costs nothing measurable.
const governEvery = 100 * time.Millisecond

// governMinBacklog is the backlog below which a target counts as keeping
// up: a few batches in flight and being read are normal.
const governMinBacklog = 1000

// governIngest narrows the gate while a target that is up and not paused
// falls behind (its backlog above governMinBacklog and grown since the
// last look), and widens it once no such target has a backlog left. It
// logs each episode once, at its start and end, and returns when ctx ends.
func (r *Relay) governIngest(ctx context.Context) {
	g := r.gate
	if g == nil {
		return
	}
	t := time.NewTicker(governEvery)
	defer t.Stop()
	last := map[string]int64{}
	var behind string // the target that started the episode; "" when none
	var since time.Time
	var waits0 uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		grows, backlog := "", false
		var pending int64
		seen := make(map[string]int64, len(last))
		for _, s := range r.eng.Stats() {
			healthy := s.Up && !s.Paused
			if healthy && s.Pending >= governMinBacklog {
				backlog = true
				if s.Pending > last[s.ID] && grows == "" {
					grows, pending = s.ID, s.Pending
				}
			}
			seen[s.ID] = s.Pending
		}
		last = seen
		switch {
		case behind == "" && grows != "":
			behind, since, waits0 = grows, time.Now(), g.waits()
			g.narrowed.Add(1)
			n := g.narrow(true)
			r.lg.Info("ingest held back: a target that is up falls behind; ingest works on fewer slots until its backlog is drained (relay.ingestConcurrency)",
				"target", behind, "pending", pending, "slots", n, "of", g.slots)
		case behind != "" && !backlog:
			g.narrow(false)
			r.lg.Info("ingest at full width again: no target that is up has a backlog",
				"target", behind, slog.Duration("held_back", time.Since(since).Round(time.Millisecond)), "waited", g.waits()-waits0, "slots", g.slots)
			behind = ""
		}
	}
}

// heldBack returns how many times the governor narrowed the gate.
func (g *ingestGate) heldBack() uint64 {
	if g == nil {
		return 0
	}
	return g.narrowed.Load()
}
