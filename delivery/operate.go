package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// StatePaused is Stats.State while an operator holds the target's
// delivery (Engine.Pause).
const StatePaused = "paused"

// ErrUnknownTarget is returned for a target the engine was not given.
var ErrUnknownTarget = errors.New("delivery: no such target")

// ErrNoRedrive is returned by Redrive when the engine's log has no
// QuarantineLog methods.
var ErrNoRedrive = errors.New("delivery: the log cannot re-drive its quarantine")

// Prober is implemented by targets that can check, without sending an
// event, that they can reach their destination (connect, authenticate).
// The engine probes such a target in the background when Run starts, so a
// target that cannot connect is reported down at once instead of at its
// first event; start-up never waits for it. Probe honours ctx.
type Prober interface {
	Probe(ctx context.Context) error
}

// Probe timing: each probe may take probeTimeout; a failed probe is tried
// again every probeEvery until it succeeds or a send settles the state.
var (
	probeTimeout = 10 * time.Second
	probeEvery   = 5 * time.Second
)

func (e *Engine) loop(target string) (*loop, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.loops[target]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownTarget, target)
	}
	return l, nil
}

// Pause holds target's delivery: events go on being logged for it, its
// loop sends nothing (a send in flight finishes) and its state is
// StatePaused until Resume. Pausing a paused target does nothing. Pause
// may be called before Run; the pause is not persisted by the engine.
func (e *Engine) Pause(target string) error {
	l, err := e.loop(target)
	if err != nil {
		return err
	}
	if !l.paused.Swap(true) {
		l.lg.Info("delivery paused")
		l.wake()
	}
	return nil
}

// Resume ends a Pause: the loop sends the events held, in order.
func (e *Engine) Resume(target string) error {
	l, err := e.loop(target)
	if err != nil {
		return err
	}
	if l.paused.Swap(false) {
		l.lg.Info("delivery resumed")
		l.wake()
	}
	return nil
}

// Redrive puts quarantined events (entries of target's quarantine, as
// listed by the log) back into target's delivery. They are sent in log
// order, before the loop's next window, in batches of the target's
// MaxBatch; each one delivered is removed from the quarantine and counted
// in Stats.Redriven, and one that fails for good again (or after
// MaxAttempts more failures) is put back in the quarantine with the new
// reason, its attempts added to the old ones and its first failure kept.
// Entries already waiting to be re-driven are skipped. Redrive returns how
// many entries it queued; it does not wait for their delivery. Events
// queued but not yet delivered when the engine stops stay quarantined.
//
// A re-driven event is older than what the target received since: for a
// namespace target it is applied as it is, which may set an object's row
// back to an older state; re-drive such a target's events only when that
// is wanted.
func (e *Engine) Redrive(target string, entries []wal.QuarantineItem) (int, error) {
	if _, ok := e.log.(QuarantineLog); !ok {
		return 0, ErrNoRedrive
	}
	l, err := e.loop(target)
	if err != nil {
		return 0, err
	}
	l.rmu.Lock()
	n := 0
	for _, q := range entries {
		if l.queued[q.Seq] {
			continue
		}
		l.queued[q.Seq] = true
		l.redrive = append(l.redrive, q)
		n++
	}
	slices.SortFunc(l.redrive, func(a, b wal.QuarantineItem) int { return cmpSeq(a.Seq, b.Seq) })
	l.rmu.Unlock()
	if n > 0 {
		l.lg.Info("re-driving quarantined events", "events", n)
		l.wake()
	}
	return n, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// wake tells the loop that its pause or re-drive queue changed.
func (l *loop) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// hold waits while the target is paused. It reports false if ctx ended.
func (l *loop) hold(ctx context.Context) bool {
	for l.paused.Load() {
		select {
		case <-l.kick:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// takeRedrive pops up to n queued entries, lowest sequences first.
func (l *loop) takeRedrive(n int) []wal.QuarantineItem {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	n = min(n, len(l.redrive))
	out := slices.Clone(l.redrive[:n])
	l.redrive = slices.Delete(l.redrive, 0, n)
	return out
}

// requeue puts entries back at the front of the queue (a pause came).
func (l *loop) requeue(entries []wal.QuarantineItem) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	l.redrive = append(entries, l.redrive...)
	slices.SortFunc(l.redrive, func(a, b wal.QuarantineItem) int { return cmpSeq(a.Seq, b.Seq) })
}

// unqueue forgets seq once its re-drive ended (delivered or quarantined
// again, or abandoned at shutdown).
func (l *loop) unqueue(seqs ...uint64) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	for _, s := range seqs {
		delete(l.queued, s)
	}
}

func (l *loop) redriveQueued() int {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return len(l.redrive)
}

// redriveAll sends the queued re-drive entries until the queue is empty,
// the target is paused (held) or ctx ends (stopped). An error is the
// log's.
func (l *loop) redriveAll(ctx context.Context) (outcome, error) {
	defer clear(l.rattempts)
	for {
		batch := l.takeRedrive(l.spec.MaxBatch)
		if len(batch) == 0 {
			return delivered, nil
		}
		items := make([]Item, len(batch))
		l.redriving = make(map[uint64]*wal.QuarantineItem, len(batch))
		for i := range batch {
			q := &batch[i]
			l.redriving[q.Seq] = q
			items[i] = l.item(&wal.Record{Seq: q.Seq, Entry: wal.Entry{Key: q.Key, Name: q.Name, Data: q.Data}})
		}
		o, err := l.deliverBatch(ctx, items, false, nil)
		var left []wal.QuarantineItem
		for i := range batch {
			if _, ok := l.redriving[batch[i].Seq]; ok {
				left = append(left, batch[i])
			}
		}
		l.redriving = nil
		if err != nil || o != delivered {
			if o == held && err == nil {
				l.requeue(left)
			} else {
				// Shutting down, or the log failed: what is left stays in
				// the quarantine, as it was.
				for _, q := range left {
					l.unqueue(q.Seq)
				}
			}
			return o, err
		}
	}
}

// settle records items of a send as delivered: counted, and for re-driven
// items removed from the quarantine. An error is the log's.
func (l *loop) settle(items []Item) error {
	if len(items) == 0 {
		return nil
	}
	if l.redriving == nil {
		l.delivered.Add(uint64(len(items)))
		return nil
	}
	seqs := make([]uint64, len(items))
	for i, it := range items {
		seqs[i] = it.Seq
	}
	if _, err := l.e.log.(QuarantineLog).DeleteQuarantine(l.spec.ID, seqs); err != nil {
		return fmt.Errorf("delivery: %s: removing re-driven events from the quarantine: %w", l.spec.ID, err)
	}
	for _, s := range seqs {
		delete(l.redriving, s)
	}
	l.unqueue(seqs...)
	l.redriven.Add(uint64(len(seqs)))
	return nil
}

// requarantine puts a re-driven item that failed again back in the
// quarantine with the new reason, keeping its first failure. An error is
// the log's.
func (l *loop) requarantine(it Item, reason error, attempts int) error {
	q := *l.redriving[it.Seq]
	q.Error = reason.Error()
	q.Attempts += attempts
	q.Time = time.Now().UTC()
	n, err := l.e.log.(QuarantineLog).ReplaceQuarantine(l.spec.ID, []wal.QuarantineItem{q})
	if err != nil {
		return fmt.Errorf("delivery: %s: quarantining %d again: %w", l.spec.ID, it.Seq, err)
	}
	delete(l.redriving, it.Seq)
	l.unqueue(it.Seq)
	if n == 0 {
		// Dropped while it was being re-driven: the operator's call stands.
		l.lg.Info("re-driven event failed again but was dropped meanwhile; not quarantined again", "seq", it.Seq, "key", it.Key, "err", reason)
		l.h.noted(reason)
		return nil
	}
	l.quarantined.Add(1)
	l.h.noted(reason)
	l.lg.Warn("re-driven event quarantined again", "seq", it.Seq, "key", it.Key, "err", reason, "attempts", q.Attempts)
	return nil
}

// probe checks a Prober target in the background until it answers or a
// send settles the target's state.
func (l *loop) probe(ctx context.Context, p Prober) {
	for {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := p.Probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !l.h.probed(err) || err == nil {
			return
		}
		if !sleep(ctx, probeEvery) {
			return
		}
	}
}
