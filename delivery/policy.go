package delivery

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// ErrExpired is the reason, wrapped, of an event quarantined because it
// was appended longer ago than its target's Policy.MaxAge.
var ErrExpired = errors.New("delivery: expired")

// Policy is one target's delivery policy. Its zero value keeps the
// engine's Options and today's behaviour: one batch at a time, no age or
// rate limit.
type Policy struct {
	// MaxAttempts quarantines an item after that many failed sends; 0
	// means Options.MaxAttempts, and a negative value retries forever
	// whatever Options.MaxAttempts says.
	MaxAttempts int
	// MaxAge quarantines an item appended to the log longer ago than this
	// (Item.AppendTime), with a reason wrapping ErrExpired, instead of
	// sending it, or sending it again; 0 means no limit. Items without an
	// append time (re-driven ones) never expire.
	MaxAge time.Duration
	// RateLimit bounds the events sent per second, as a token bucket
	// holding half a second's worth (at least one event); batches are cut
	// to that size. 0 means no limit. Lanes and batches in flight
	// share it.
	RateLimit float64
	// InFlight is how many batches may be in flight at once: Send is
	// called for the next batch before the previous ones returned. Their
	// acknowledgements are taken in log order; a failed batch is retried
	// alone and everything after it is sent again (at least once), and a
	// batch that shares a key with one in flight waits for it, so the
	// order per key holds. 0 or 1 means one at a time. Above 1, Send is
	// called concurrently: only for targets whose Send allows it.
	InFlight int
	// Lanes splits the target's events by hash of their key (event.LaneOf:
	// FNV-1a of "bucket/object") into that many lanes, each delivered in
	// order by its own goroutine (and so, for a connection-pooling target
	// such as the webhook, over its own connection). The cursor moves past
	// a window only once every lane delivered its share. 0 or 1 means one
	// lane. Above 1, Send is called concurrently.
	Lanes int
}

// check reports a policy that cannot work.
func (p *Policy) check(id string) error {
	switch {
	case p.MaxAge < 0:
		return fmt.Errorf("delivery: %s: MaxAge %s is negative", id, p.MaxAge)
	case p.RateLimit < 0 || math.IsNaN(p.RateLimit) || math.IsInf(p.RateLimit, 0):
		return fmt.Errorf("delivery: %s: RateLimit %v is not a positive number", id, p.RateLimit)
	case p.InFlight < 0:
		return fmt.Errorf("delivery: %s: InFlight %d is negative", id, p.InFlight)
	case p.Lanes < 0:
		return fmt.Errorf("delivery: %s: Lanes %d is negative", id, p.Lanes)
	}
	return nil
}

// burst is the token bucket's size: half a second's worth of events, at
// least one. Small enough to keep the rate within 5 % over any 10 s, the
// first ones included; large enough that a loop held up by a busy machine
// for less than that loses no tokens to a full bucket.
func (p *Policy) burst() int {
	return max(1, int(math.Ceil(p.RateLimit/2)))
}

// batchCap returns maxBatch cut to what the rate limit lets go at once.
func (p *Policy) batchCap(maxBatch int) int {
	if p.RateLimit > 0 {
		return min(maxBatch, p.burst())
	}
	return maxBatch
}

// limiter returns the token bucket of RateLimit, nil without one.
func (p *Policy) limiter() *rate.Limiter {
	if p.RateLimit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(p.RateLimit), p.burst())
}

// maxAttempts returns the attempts after which an item is quarantined, 0
// for never.
func (l *loop) maxAttempts() int {
	switch n := l.spec.MaxAttempts; {
	case n < 0:
		return 0
	case n > 0:
		return n
	}
	return l.e.opts.MaxAttempts
}

// windowItems bounds the items of one window of a target that is not a
// namespace one: with one send at a time, a batch for each lane; with
// several in flight, windowFlights batches for each send that may be in
// flight in each lane: lanes empty their pipelines at each window's end,
// and the longer the window, the rarer that pause; one lane slides over
// windows (slide.go), where a longer window means fewer reads and cursor
// moves, and time to read the next window while this one is sent.
func (l *loop) windowItems() int {
	n := l.spec.MaxBatch * max(1, l.spec.Lanes)
	if l.spec.InFlight > 1 {
		n *= l.spec.InFlight * windowFlights
	}
	return n
}

// windowFlights is how many times a pipelined window holds its in-flight
// batches.
const windowFlights = 4

// takeTokens waits until the rate limit lets n events go, and reports
// false if ctx ended first.
func (l *loop) takeTokens(ctx context.Context, n int) bool {
	if l.limiter == nil {
		return ctx.Err() == nil
	}
	return l.limiter.WaitN(ctx, n) == nil
}

// expire quarantines the items of items older than MaxAge and returns the
// others, in order. An error is the log's.
func (l *loop) expire(items []Item) ([]Item, error) {
	if l.spec.MaxAge <= 0 {
		return items, nil
	}
	now := time.Now()
	var kept []Item
	for i := range items {
		it := &items[i]
		age := now.Sub(it.AppendTime)
		if it.AppendTime.IsZero() || age <= l.spec.MaxAge {
			if kept != nil {
				kept = append(kept, *it)
			}
			continue
		}
		if kept == nil {
			kept = append(make([]Item, 0, len(items)), items[:i]...)
		}
		reason := fmt.Errorf("%w: appended %s ago, maxAge %s", ErrExpired, age.Round(time.Millisecond), l.spec.MaxAge)
		if err := l.quarantine(*it, reason, l.attemptsOf(it.Seq)); err != nil {
			return nil, err
		}
	}
	if kept == nil {
		return items, nil
	}
	return kept, nil
}

// attempt counts a failed send of seq and returns its failed sends so far.
// Lanes count concurrently.
func (l *loop) attempt(seq uint64) int {
	l.amu.Lock()
	defer l.amu.Unlock()
	attempts := l.attempts
	if l.redriving != nil {
		attempts = l.rattempts
	}
	attempts[seq]++
	return attempts[seq]
}

// attemptsOf returns the failed sends of seq so far.
func (l *loop) attemptsOf(seq uint64) int {
	l.amu.Lock()
	defer l.amu.Unlock()
	if l.redriving != nil {
		return l.rattempts[seq]
	}
	return l.attempts[seq]
}

// resetBackoff starts the retry delays over: the target took a send.
func (l *loop) resetBackoff() {
	l.amu.Lock()
	l.bo.Reset()
	l.amu.Unlock()
}
