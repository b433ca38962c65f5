package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/time/rate"

	"github.com/bucketrelay/bucketrelay/wal"
)

// loop drains the log into one target. Its fields without a lock or an
// atomic type are owned by run's goroutine.
type loop struct {
	spec   Spec
	e      *Engine
	lg     *slog.Logger
	h      *health
	cursor uint64

	// amu guards bo and the attempt counts, which the lanes of a window
	// share (policy.go).
	amu sync.Mutex
	bo  *backoff.ExponentialBackOff // reset by every successful send
	// attempts counts the failed sends of each record not yet passed by
	// the cursor, across re-reads of its window, so that MaxAttempts holds
	// however often a window is read again. Pruned as the cursor moves.
	attempts map[uint64]int
	limiter  *rate.Limiter // Policy.RateLimit; nil without one

	// The backlog count (backlog.go): cmu guards bl and pairs moves of
	// pos with consumed, so the counter snapshots them together.
	cmu sync.Mutex
	bl  backlogCount

	// Pause and re-drive (operate.go). kick wakes the loop when either
	// changes; the queue is guarded by rmu. redriving holds the entries of
	// the re-drive batch being sent, and rattempts their failed sends in
	// this re-drive; both are owned by run's goroutine.
	paused    atomic.Bool
	kick      chan struct{}
	rmu       sync.Mutex
	redrive   []wal.QuarantineItem
	queued    map[uint64]bool
	redriving map[uint64]*wal.QuarantineItem
	rattempts map[uint64]int

	consumed    atomic.Int64 // records the cursor passed since Add
	delivered   atomic.Uint64
	retried     atomic.Uint64
	quarantined atomic.Uint64
	sends       atomic.Uint64
	redriven    atomic.Uint64
	resent      atomic.Uint64
	pos         atomic.Uint64

	// Lifecycle (lifecycle.go): stop ends this loop alone (set when it
	// starts, under Engine.mu), done is closed when it has ended, and
	// keepTarget leaves the target open for the loop that replaces it.
	stop       context.CancelFunc
	done       chan struct{}
	keepTarget atomic.Bool
}

func (l *loop) stats() Stats {
	pending, counted := l.pending()
	s := Stats{
		ID: l.spec.ID, Cursor: l.pos.Load(), Pending: pending, Counting: !counted,
		Delivered: l.delivered.Load(), Retried: l.retried.Load(), Quarantined: l.quarantined.Load(),
		Sends: l.sends.Load(), Redriven: l.redriven.Load(), Resent: l.resent.Load(),
	}
	l.h.fill(&s)
	if l.paused.Load() {
		s.Paused, s.State = true, StatePaused
	}
	return s
}

// backoff returns the next retry delay, jitter included, never above
// MaxBackoff.
func (l *loop) backoff() time.Duration {
	l.amu.Lock()
	defer l.amu.Unlock()
	return min(l.bo.NextBackOff(), l.e.opts.MaxBackoff)
}

// pausable waits d like sleep, but ends early when the target is paused,
// so that a pause is not held up by a retry delay.
func (l *loop) pausable(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-l.kick:
			if l.paused.Load() {
				l.wake() // for hold
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// run drains until ctx ends (it returns nil then) or the log fails under
// it: a cursor move or a quarantine entry refused, or a read failing for
// any reason other than a damaged record. It returns that error; the
// target cannot make progress without its log.
func (l *loop) run(ctx context.Context) error {
	l.pos.Store(l.cursor)
	readFailed := false
	w := l.readAt(ctx, l.cursor)
	for ctx.Err() == nil {
		if l.paused.Load() || l.redriveQueued() > 0 {
			if !l.hold(ctx) {
				return nil
			}
			o, err := l.redriveAll(ctx)
			switch {
			case err != nil:
				return l.fatal(ctx, err)
			case o == stopped:
				return nil
			}
			w = l.readAt(ctx, l.cursor) // the window may be stale after a hold
			continue
		}
		if w.err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(w.err, wal.ErrCorrupt) {
				return fmt.Errorf("delivery: %s: reading the log: %w", l.spec.ID, w.err)
			}
			// A damaged record: the target is down until the read works
			// (the log skips and quarantines damage it can isolate).
			readFailed = true
			d := l.backoff()
			l.h.failed("reading the log failed, retrying", w.err, StateDown, d, true, "cursor", l.cursor)
			if !sleep(ctx, d) {
				return nil
			}
			w = l.readAt(ctx, l.cursor)
			continue
		}
		if readFailed {
			readFailed = false
			l.resetBackoff()
			l.h.recovered(true)
		}
		var prefetch chan window
		if len(w.items) > 0 && l.sliding() {
			o, next, err := l.slide(ctx, w)
			switch {
			case err != nil:
				return l.fatal(ctx, err)
			case o == stopped:
				return nil // shutting down; the cursor stays after the last window passed
			case o == reread, o == held:
				w = l.readAt(ctx, l.cursor)
			default:
				w = next // read from the cursor: every window before it is passed
			}
			continue
		}
		if len(w.items) > 0 {
			// Read the next window while this one is being sent: one at
			// most, so a loop holds two windows at most.
			prefetch = make(chan window, 1)
			go func(from uint64) { prefetch <- l.readAt(ctx, from) }(w.next)
			o, err := l.deliverWindow(ctx, w.items)
			if err != nil || o != delivered {
				<-prefetch // let the read end before the caller may close the log
			}
			switch {
			case err != nil:
				return l.fatal(ctx, err)
			case o == stopped:
				return nil // shutting down; the cursor stays before the window
			case o == reread, o == held:
				w = l.readAt(ctx, l.cursor)
				continue
			}
		}
		if err := l.passWindow(w); err != nil {
			if prefetch != nil {
				<-prefetch
			}
			return l.fatal(ctx, err)
		}
		if prefetch != nil {
			w = <-prefetch
			continue
		}
		if w.n > 0 {
			// A window of records with nothing to send (a namespace
			// target's reads) may have been cut short: read on.
			w = l.readAt(ctx, l.cursor)
			continue
		}
		select {
		case <-w.wake:
		case <-l.kick:
		case <-ctx.Done():
			return nil
		}
		w = l.readAt(ctx, l.cursor)
	}
	return nil
}

// passWindow moves the cursor past w, each of whose items is delivered or
// quarantined. An error is the log's.
func (l *loop) passWindow(w window) error {
	if w.next <= l.cursor {
		return nil
	}
	if err := l.e.log.Advance(l.spec.ID, w.next); err != nil {
		return fmt.Errorf("delivery: %s: moving the cursor: %w", l.spec.ID, err)
	}
	l.cursor = w.next
	l.passed(w.next, w.n)
	// Records coalesced away or with nothing to write count as delivered
	// once the window is done.
	l.delivered.Add(uint64(w.n - len(w.items)))
	for seq := range l.attempts {
		if seq < l.cursor {
			delete(l.attempts, seq)
		}
	}
	return nil
}

// fatal returns err, or nil when it is only the log being closed after ctx
// ended: a shutdown, not a failure.
func (l *loop) fatal(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, wal.ErrClosed) {
		return nil
	}
	return err
}

// outcome says how a delivery attempt ended.
type outcome int

const (
	delivered outcome = iota // every item delivered or quarantined
	stopped                  // ctx ended first
	reread                   // nothing was written: read a wider window
	held                     // the target was paused: nothing more is sent
)

// deliver sends items in batches of MaxBatch until each is delivered or
// quarantined. An error is the log's (a quarantine entry refused).
func (l *loop) deliver(ctx context.Context, items []Item) (outcome, error) {
	if l.spec.InFlight > 1 && l.redriving == nil {
		return l.pipeline(ctx, items)
	}
	first := true
	for len(items) > 0 {
		n := min(len(items), l.spec.MaxBatch)
		// A namespace window that fails before any write is read again
		// after the backoff, so events that arrived meanwhile are
		// coalesced into it: one write per key over the whole outage.
		// Attempts are counted per record across those reads.
		o, err := l.deliverBatch(ctx, items[:n], first && l.spec.Namespace, nil)
		if err != nil || o != delivered {
			return o, err
		}
		first = false
		items = items[n:]
	}
	return delivered, nil
}

// deliverBatch sends batch until each item is delivered or quarantined.
// With pre, the batch was sent already (in a pipeline) and pre is what
// that send returned.
func (l *loop) deliverBatch(ctx context.Context, batch []Item, rereadOK bool, pre error) (outcome, error) {
	single := false // after a permanent error on a batch, isolate items
	pending := batch
	for len(pending) > 0 {
		if ctx.Err() != nil {
			return stopped, nil
		}
		if l.paused.Load() && len(pending) == len(batch) {
			// Nothing of the batch was written yet, so holding it now
			// sends nothing twice; a batch under way is finished first.
			return held, nil
		}
		var err error
		send := pending
		if pre != nil {
			err, pre = pre, nil
		} else {
			// An item retried past its target's MaxAge goes no further.
			kept, qerr := l.expire(pending)
			if qerr != nil {
				return delivered, qerr
			}
			if pending = kept; len(pending) == 0 {
				break
			}
			send = pending
			if single {
				send = pending[:1]
			}
			if !l.takeTokens(ctx, len(send)) {
				return stopped, nil
			}
			err = l.send(ctx, send)
		}
		if err == nil {
			if err := l.settle(send); err != nil {
				return delivered, err
			}
			l.h.recovered(false)
			l.resetBackoff()
			pending = pending[len(send):]
			continue
		}
		var failed []ItemError
		var be *BatchError
		switch {
		case errors.As(err, &be):
			failed = itemErrors(be.Failed, len(send))
		case IsPermanent(err) && len(send) == 1:
			failed = []ItemError{{0, err}}
		case IsPermanent(err):
			single = true // find which items are bad, one at a time
			continue
		default:
			failed = make([]ItemError, len(send))
			for i := range send {
				failed[i] = ItemError{i, err}
			}
		}
		var retry []Item
		var cause error // of the retry: the first real failure
		quarantined := 0
		gone := goneIn(failed)
		for _, f := range failed {
			it := send[f.Index]
			if gone != nil && !IsPermanent(f.Err) {
				retry = append(retry, it) // held, not an attempt (gone.go)
				continue
			}
			reason := realCause(send, failed, f)
			n := l.attempt(it.Seq)
			if maxN := l.maxAttempts(); IsPermanent(f.Err) || (maxN > 0 && n >= maxN) {
				if err := l.quarantine(it, reason, n); err != nil {
					return delivered, err
				}
				quarantined++
				single = false // the bad item is found
				continue
			}
			retry = append(retry, it)
			if cause == nil {
				cause = reason
			}
		}
		ok := len(send) - len(failed)
		if err := l.settle(succeeded(send, failed)); err != nil {
			return delivered, err
		}
		pending = append(retry, pending[len(send):]...)
		if len(retry) == 0 {
			if ok > 0 {
				l.h.recovered(false)
			}
			continue
		}
		if gone != nil {
			if !l.holdGone(ctx, gone) {
				return stopped, nil
			}
			continue
		}
		state := StateDown
		if ok > 0 || quarantined > 0 {
			state = StateBackingOff // the target answered for some items
		}
		l.retried.Add(1)
		d := l.backoff()
		if ra, ok := RetryAfterOf(cause); ok {
			d = ra // the destination said when
		}
		l.h.failed("send failed, retrying", cause, state, d, false, "items", len(retry))
		if !l.pausable(ctx, d) {
			return stopped, nil
		}
		if rereadOK && len(pending) == len(batch) {
			return reread, nil
		}
	}
	return delivered, nil
}

// succeeded returns the items of send that failed does not name.
func succeeded(send []Item, failed []ItemError) []Item {
	if len(failed) == 0 {
		return send
	}
	bad := make(map[int]bool, len(failed))
	for _, f := range failed {
		bad[f.Index] = true
	}
	out := make([]Item, 0, len(send)-len(failed))
	for i := range send {
		if !bad[i] {
			out = append(out, send[i])
		}
	}
	return out
}

// itemErrors returns the failures of a BatchError that name an item of a
// send of n items, once each, in item order.
func itemErrors(in []ItemError, n int) []ItemError {
	seen := make(map[int]bool, len(in))
	out := make([]ItemError, 0, len(in))
	for _, f := range in {
		if f.Index >= 0 && f.Index < n && f.Err != nil && !seen[f.Index] {
			seen[f.Index] = true
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// realCause returns f's error or, when that is only a consequence of an
// earlier failure in the same send (ErrEarlierFailed), the real cause: the
// last retryable failure before it of the same object, else the last
// retryable failure before it (a target stops at the first one), else the
// last real failure before it.
func realCause(send []Item, failed []ItemError, f ItemError) error {
	if !errors.Is(f.Err, ErrEarlierFailed) {
		return f.Err
	}
	var sameKey, retryable, any error
	for _, g := range failed {
		if g.Index >= f.Index {
			break
		}
		if errors.Is(g.Err, ErrEarlierFailed) {
			continue
		}
		any = g.Err
		if !IsPermanent(g.Err) {
			retryable = g.Err
			if send[g.Index].Key == send[f.Index].Key {
				sameKey = g.Err
			}
		}
	}
	for _, c := range []error{sameKey, retryable, any} {
		if c != nil {
			return c
		}
	}
	return f.Err
}

// send calls the target. A send in flight when ctx ends may go on for
// ShutdownGrace, so SIGTERM does not cut a batch the target is taking.
func (l *loop) send(ctx context.Context, items []Item) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(l.e.opts.ShutdownGrace, cancel)
		context.AfterFunc(sctx, func() { t.Stop() })
	})
	defer stop()
	start := time.Now()
	err := l.spec.Target.Send(sctx, items)
	if err == nil {
		l.sends.Add(1)
	}
	l.debugSend(ctx, items, time.Since(start), err) // debug.go
	return err
}

// quarantine moves it to the target's quarantine with the real cause of
// its failure. An error is the log's: the loop must not move past it.
func (l *loop) quarantine(it Item, reason error, attempts int) error {
	if l.redriving != nil {
		return l.requarantine(it, reason, attempts)
	}
	r := wal.Record{Seq: it.Seq, Entry: wal.Entry{Key: it.Key, Name: string(it.EventName), EventTime: it.EventTime, Data: it.Record}}
	if err := l.e.log.Quarantine(l.spec.ID, r, reason.Error(), attempts); err != nil {
		return fmt.Errorf("delivery: %s: quarantining %d: %w", l.spec.ID, it.Seq, err)
	}
	l.quarantined.Add(1)
	l.h.noted(reason)
	l.lg.Warn("event quarantined", "seq", it.Seq, "key", it.Key, "err", reason, "attempts", attempts)
	return nil
}
