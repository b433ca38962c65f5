package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
)

// BacklogCounter is an optional interface of a Log: it counts a target's
// records in a range of sequences from what the log keeps in memory,
// without reading them. The engine uses it to count a new loop's backlog
// at once; without it (or when Backlog cannot tell) the backlog is counted
// by reading the records in the background while the loop already
// delivers (Stats.Counting). wal.Log implements it.
type BacklogCounter interface {
	// Backlog returns how many records routed to target lie between
	// sequences from and through, both included, and true; or false when
	// the log cannot tell without reading them all (a damaged frame; a
	// lane, whose keys an index does not hold). The engine calls it while
	// it holds its lock, with target's cursor at from and no loop of
	// target running: it must be cheap (in memory, reading a frame or two
	// at most).
	Backlog(target string, from, through uint64) (int64, bool)
}

// backlogCount is what a loop's Pending is computed from: n records were
// pending at one moment (a snapshot), when the log had routed routed
// records to the target and the loop had passed consumed. Pending is then
// n + (routed since) - (passed since). Until counted is set, n is the part
// of the snapshot's backlog read so far and Pending a lower bound, never 0.
type backlogCount struct {
	counted  bool
	n        int64
	routed   uint64
	consumed int64
}

// pending returns the records routed to the target that its cursor has not
// passed; while the backlog is being counted, a lower bound of at least 1.
func (l *loop) pending() (int64, bool) {
	routed, _ := l.e.log.Routed(l.spec.ID)
	l.cmu.Lock()
	b, consumed := l.bl, l.consumed.Load()
	l.cmu.Unlock()
	p := b.n + int64(routed-b.routed) - (consumed - b.consumed)
	if !b.counted {
		return max(1, p), false
	}
	return max(0, p), true
}

// passed records that the loop's cursor moved to next over n records of the
// target, as one step for the counter's snapshot.
func (l *loop) passed(next uint64, n int) {
	l.cmu.Lock()
	l.pos.Store(next)
	l.consumed.Add(int64(n))
	l.cmu.Unlock()
}

// setCount publishes a count (or the part read so far).
func (l *loop) setCount(b backlogCount) {
	l.cmu.Lock()
	l.bl = b
	l.cmu.Unlock()
}

// counted reports whether the backlog is known.
func (l *loop) counted() bool {
	l.cmu.Lock()
	defer l.cmu.Unlock()
	return l.bl.counted
}

// countQuick counts the backlog from the loop's cursor without reading
// records, when it is empty or the log is a BacklogCounter. It reports
// whether it could. Called by newLoop, before the loop runs.
func (l *loop) countQuick() bool {
	routed, last := l.e.log.Routed(l.spec.ID)
	b := backlogCount{routed: routed}
	if l.cursor > last {
		b.counted = true
	} else if bc, ok := l.e.log.(BacklogCounter); ok {
		b.n, b.counted = bc.Backlog(l.spec.ID, l.cursor, last)
	}
	l.setCount(b)
	return b.counted
}

// countPause, when set (by tests), is called before the counter takes
// each record.
var countPause func()

// countEvery is how many records the counter reads between updates of the
// lower bound Stats shows while it counts.
const countEvery = 4096

// count reads the backlog to count it while the loop delivers, until it
// is counted or ctx ends. The count starts from a snapshot of the loop's
// cursor and what it passed, then the log's routed count: records the
// loop passes while the counter reads are in both the count and the
// passed records, so Pending stays exact. If the loop passes records the
// counter has not read yet, the log may reclaim them under the counter
// (a skipped record would make Pending reach 0 early): the counter starts
// again from the loop's new cursor.
func (l *loop) count(ctx context.Context) {
	t0 := time.Now()
	for restarts := 0; ctx.Err() == nil; restarts++ {
		l.cmu.Lock()
		from, consumed := l.pos.Load(), l.consumed.Load()
		l.cmu.Unlock()
		routed, last := l.e.log.Routed(l.spec.ID)
		b := backlogCount{routed: routed, consumed: consumed}
		if from > last {
			b.counted = true
			l.setCount(b)
			return
		}
		l.setCount(b)
		expect := from // the next sequence the count has checked nothing skips
		overtaken := false
		ahead := func() bool {
			c, _ := l.e.log.Cursor(l.spec.ID)
			return c > expect
		}
		_, err := l.e.log.Read(ctx, from, l.spec.ID, func(r wal.Record) bool {
			if countPause != nil {
				countPause()
			}
			if r.Seq != expect && ahead() {
				overtaken = true
				return false
			}
			if r.Seq > last {
				expect = last + 1
				return false
			}
			b.n++
			expect = r.Seq + 1
			if b.n%countEvery == 0 {
				l.setCount(b)
			}
			return true
		})
		if err == nil && !overtaken && expect <= last && ahead() {
			overtaken = true
		}
		switch {
		case ctx.Err() != nil:
			return
		case overtaken:
			l.lg.Debug("counting the backlog: delivery passed the count; counting again from its cursor", "restarts", restarts+1)
			continue
		case err != nil && !errors.Is(err, wal.ErrCorrupt):
			// The loop meets the same error and stops the engine, or the
			// log recovers: try again.
			l.lg.Warn("counting the backlog: reading the log failed; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		case err != nil:
			// Damage must not hold up a count of the intact records: the
			// loop meets it again and reports it.
			l.lg.Warn("counting the backlog: the log is damaged; the pending count is a lower bound", "err", err)
		}
		b.counted = true
		l.setCount(b)
		l.lg.Debug("backlog counted", "pending", b.n, "took", time.Since(t0))
		return
	}
}
