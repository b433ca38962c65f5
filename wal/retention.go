package wal

import (
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention keeps records every target has delivered, for rewinds and for
// targets that start from the oldest retained record. The zero value keeps
// nothing: a frame is reclaimed as soon as every target passed it.
type Retention struct {
	// Age keeps delivered frames while they are younger than Age; 0 means
	// no age bound (Bytes alone bounds what is kept).
	Age time.Duration
	// Bytes keeps the newest delivered frames up to Bytes record bytes in
	// all (the measure of Bytes and Pending); 0 means no byte bound.
	Bytes int64
}

// On reports whether r keeps anything.
func (r Retention) On() bool { return r.Age > 0 || r.Bytes > 0 }

// ErrNotRetained is returned by Rewind, SeqAt and Backfill for a point
// older than the oldest record the log still holds for every target. The
// error wrapping it is a *RetainedError naming the oldest available record.
var ErrNotRetained = errors.New("wal: older than the retained history")

// RetainedError is the error Rewind, SeqAt and Backfill return for a point
// older than the retained history: it names the oldest record available.
type RetainedError struct {
	// Asked is the sequence (Rewind, Backfill) or time (SeqAt) asked for.
	AskedSeq  uint64
	AskedTime time.Time
	// First is the oldest sequence a target can be rewound to, Oldest its
	// append time (zero when the log holds no record: First is then the
	// next sequence to be appended).
	First  uint64
	Oldest time.Time
}

func (e *RetainedError) Error() string {
	asked := fmt.Sprintf("sequence %d", e.AskedSeq)
	if !e.AskedTime.IsZero() {
		asked = e.AskedTime.UTC().Format(time.RFC3339Nano)
	}
	if e.Oldest.IsZero() {
		return fmt.Sprintf("%v: %s: no history is retained; the next event will be sequence %d", ErrNotRetained, asked, e.First)
	}
	return fmt.Sprintf("%v: %s: the oldest available event is sequence %d, appended at %s",
		ErrNotRetained, asked, e.First, e.Oldest.UTC().Format(time.RFC3339Nano))
}

// Unwrap returns ErrNotRetained.
func (e *RetainedError) Unwrap() error { return ErrNotRetained }

// SetRetention replaces the log's retention (Options.Retention). Frames
// kept under the old one that the new one does not keep are reclaimed at
// the next commit.
//
// A log that ever had a retention remembers it in the file: opened again,
// the frames every target passed are taken for kept ones and reclaimed
// unless the retention then in force keeps them. (Without the mark, such
// frames, rare otherwise, are left as they are.)
func (l *Log) SetRetention(r Retention) error {
	if r.On() && !l.readOnly {
		l.c.txMu.Lock()
		err := l.db.Update(markRetention)
		l.c.txMu.Unlock()
		if err != nil {
			if isNoSpace(err) {
				return fmt.Errorf("wal: set retention: %w", ErrNoSpace)
			}
			return fmt.Errorf("wal: set retention: %w", l.stop(err))
		}
	}
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	l.ix.ret = r
	return nil
}

// keyRetention in the meta bucket marks a log that kept frames for
// retention.
var keyRetention = []byte("retention")

func markRetention(tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMeta)
	if mb.Get(keyRetention) != nil {
		return nil
	}
	return mb.Put(keyRetention, []byte{1})
}

// RetainedStats is what Retained reports.
type RetainedStats struct {
	// First is the oldest sequence a target can be rewound to: from there
	// on the log holds every record it was given, for every target. It is
	// Last+1 when nothing is held.
	First uint64
	// Last is the last committed sequence.
	Last uint64
	// Oldest is when First was appended; zero when nothing is held.
	Oldest time.Time
	// Events and Bytes are what retention keeps beyond the pending
	// records: records in frames every target passed.
	Events, Bytes int64
}

// Retained returns the range a target can be rewound to and what retention
// keeps now.
func (l *Log) Retained() RetainedStats {
	l.ix.mu.Lock()
	s := RetainedStats{Last: l.lastSeq.Load(), Events: l.ix.retN, Bytes: l.ix.retBytes}
	m := l.ix.retainedFrom(s.Last)
	if m == nil {
		s.First = s.Last + 1
		l.ix.mu.Unlock()
		return s
	}
	s.First = m.first
	at := m.at
	if at == 0 {
		at = l.frameTime(m) // once per frame loaded from the file
	}
	l.ix.mu.Unlock()
	s.Oldest = time.Unix(0, at).UTC()
	return s
}

// whole reports whether m holds every record it was written with, for
// every target it listed: it can be re-read from any of its sequences.
func (m *frameMeta) whole() bool {
	return m.damage == "" && !m.gone && !m.evicted && m.count == int64(m.last-m.first+1)
}

// floorCache is the last answer of retainedFrom: the run's first frame
// (nil: none) when the last sequence was last and the index's shape was
// shape. Frames appended since only extend the run, so only they are
// walked again.
type floorCache struct {
	valid bool
	shape uint64
	last  uint64
	m     *frameMeta
}

// retainedFrom returns the oldest frame of the run of whole, consecutive
// frames that ends at the last sequence, or nil. Called with mu held.
func (ix *index) retainedFrom(last uint64) *frameMeta {
	c := &ix.fc
	cached := c.valid && c.shape == ix.shape && c.last <= last
	var first *frameMeta
	next := last + 1
	for i := len(ix.frames) - 1; i >= 0; i-- {
		m := ix.frames[i]
		if cached && m.last <= c.last {
			// The frames before were walked when the cache was filled.
			if m.last == c.last && next == c.last+1 && c.m != nil {
				first = c.m
			}
			break
		}
		if m.last+1 != next || !m.whole() {
			break
		}
		first, next = m, m.first
	}
	*c = floorCache{valid: true, shape: ix.shape, last: last, m: first}
	return first
}

// floor is the oldest sequence a cursor may be moved back to. Called with
// mu held.
func (ix *index) floor(last uint64) uint64 {
	if m := ix.retainedFrom(last); m != nil {
		return m.first
	}
	return last + 1
}

// notRetained is the error for a point older than the retained history.
func (l *Log) notRetained(seq uint64, t time.Time) error {
	s := l.Retained()
	return &RetainedError{AskedSeq: seq, AskedTime: t, First: s.First, Oldest: s.Oldest}
}

// frameTime reads the append time of m's first record, for frames loaded
// from the file (those appended since Open carry it), and remembers it. A
// frame that cannot be read counts as appended at the epoch: it is never
// young. Called with mu held (m.at is guarded by it); only a read
// transaction is taken.
func (l *Log) frameTime(m *frameMeta) int64 {
	at := int64(1)
	_ = l.db.View(func(tx *bolt.Tx) error {
		recs, err := loadFrame(tx.Bucket(bucketRecords), m.first)
		if err != nil || len(recs) == 0 {
			return nil
		}
		at = recs[0].AppendTime.UnixNano()
		return nil
	})
	m.at = at
	return at
}

// young reports whether m is younger than the retention's age (always,
// without an age bound). Called with mu held.
func (l *Log) young(m *frameMeta, now int64) bool {
	if l.ix.ret.Age <= 0 {
		return true
	}
	at := m.at
	if at == 0 {
		at = l.frameTime(m)
	}
	return now-at < int64(l.ix.ret.Age)
}

// protected reports whether compacting m would cut records out of the
// retained history: m is whole and young, and within the newest
// retention bytes appended. Called with mu held.
func (l *Log) protected(m *frameMeta, now int64) bool {
	r := l.ix.ret
	if !r.On() || !m.whole() {
		return false
	}
	if r.Bytes > 0 && l.ix.cum-m.cum >= r.Bytes {
		return false
	}
	return l.young(m, now)
}

// keep marks m, which every target passed, as kept by retention. Called
// with mu held.
func (ix *index) keep(m *frameMeta) {
	if m.kept {
		return
	}
	m.kept = true
	i := sort.Search(len(ix.kept), func(i int) bool { return ix.kept[i].first >= m.first })
	ix.kept = append(ix.kept, nil)
	copy(ix.kept[i+1:], ix.kept[i:])
	ix.kept[i] = m
	ix.countKept(m, 1)
}

// unkeep takes m out of what retention keeps (it is reclaimed, or a target
// was moved back before it). Called with mu held.
func (ix *index) unkeep(m *frameMeta) {
	if !m.kept {
		return
	}
	m.kept = false
	i := sort.Search(len(ix.kept), func(i int) bool { return ix.kept[i].first >= m.first })
	switch {
	case i == 0 && len(ix.kept) > 0 && ix.kept[0] == m:
		ix.kept[0] = nil
		ix.kept = ix.kept[1:] // the common case: no copy
	case i < len(ix.kept) && ix.kept[i] == m:
		ix.kept = append(ix.kept[:i], ix.kept[i+1:]...)
	}
	ix.countKept(m, -1)
}

// countKept adds (sign 1) or takes out (-1) m's records from the retained
// totals, overall and per target.
func (ix *index) countKept(m *frameMeta, sign int64) {
	ix.retN += sign * m.count
	ix.retBytes += sign * m.bytes
	for _, t := range m.targets {
		u := ix.retT[t.target]
		if u == nil {
			u = &usage{}
			ix.retT[t.target] = u
		}
		u.add(sign*t.n, sign*t.bytes)
	}
}

// loadRetention numbers the frames of a log just opened by the bytes
// appended up to them and, in a log that kept frames for retention
// (marked), marks those every target has passed as kept: the next commit
// reclaims those the retention in force does not keep.
func (ix *index) loadRetention(marked bool) {
	view := cursorView{durable: ix.durable}
	for _, m := range ix.frames {
		ix.cum += m.bytes
		m.cum = ix.cum
		if marked && m.damage == "" && view.passed(m) {
			ix.keep(m)
		}
	}
}

// sweepDue reports whether a commit has retention work: kept frames to
// reclaim, or frames evicted for room. Called with mu held.
func (l *Log) sweepDue() bool {
	ix := &l.ix
	if len(ix.evictQ) > 0 {
		return true
	}
	if len(ix.kept) == 0 && len(ix.deferred) == 0 {
		return false
	}
	if !ix.ret.On() || (ix.ret.Bytes > 0 && ix.retBytes > ix.ret.Bytes) {
		return len(ix.kept) > 0
	}
	now := time.Now().UnixNano()
	if len(ix.kept) > 0 && !l.young(ix.kept[0], now) {
		return true
	}
	return len(ix.deferred) > 0 && !l.protected(ix.deferred[0], now)
}

// retain applies retention to a transaction's plan: frames every target
// passed that retention keeps are kept instead of reclaimed, young frames
// are not compacted (it would cut records out of the retained history),
// and kept frames beyond the retention, or evicted for room, are
// reclaimed oldest first. Called by plan with mu held.
func (l *Log) retain(p *txPlan, frames []*pendingFrame) {
	ix := &l.ix
	for _, f := range frames {
		ix.cum += f.meta.bytes
		f.meta.cum = ix.cum
	}
	if !ix.ret.On() && len(ix.kept) == 0 && len(ix.evictQ) == 0 && len(ix.deferred) == 0 {
		return
	}
	now := time.Now().UnixNano()
	if ix.ret.On() {
		reclaim := p.reclaim[:0]
		var kept []*frameMeta
		for _, m := range p.reclaim {
			if m.damage == "" && !m.evicted && (ix.ret.Bytes <= 0 || m.bytes <= ix.ret.Bytes) && l.young(m, now) {
				ix.keep(m)
				kept = append(kept, m)
				continue
			}
			reclaim = append(reclaim, m)
		}
		p.reclaim = reclaim
		// A frame joins the retained history when its last target passes
		// it, so after its other targets' appends took their room: its
		// records count against those targets' bounds from now on, and a
		// rewind would make them pending again. Make room, oldest first,
		// as an append does (evictFor), so pending and retained stay
		// within each bound.
		for _, m := range kept {
			for _, t := range m.targets {
				ix.evictFor(t.target, *ix.use(t.target), usage{}, ix.limit(t.target))
			}
		}
		compact := p.compact[:0]
		for _, m := range p.compact {
			if l.protected(m, now) {
				ix.deferred = append(ix.deferred, m)
				continue
			}
			compact = append(compact, m)
		}
		p.compact = compact
	}
	// Frames deferred from compaction come back once they are old.
	for len(ix.deferred) > 0 && !l.protected(ix.deferred[0], now) {
		m := ix.deferred[0]
		ix.deferred = ix.deferred[1:]
		if !m.gone {
			ix.compactQ = append(ix.compactQ, m)
		}
	}
	if len(ix.deferred) == 0 {
		ix.deferred = nil
	}
	// Kept frames beyond the retention go, oldest first.
	for len(ix.kept) > 0 {
		m := ix.kept[0]
		over := ix.ret.Bytes > 0 && ix.retBytes > ix.ret.Bytes
		if ix.ret.On() && !over && l.young(m, now) {
			break
		}
		ix.evict(m)
	}
	// Evicted frames are reclaimed by this transaction; one that is still
	// held afterwards (the transaction failed) is tried again.
	seen := map[*frameMeta]bool{}
	for _, m := range p.reclaim {
		seen[m] = true
	}
	q := ix.evictQ[:0]
	for _, m := range ix.evictQ {
		if m.gone || !m.evicted || seen[m] {
			continue
		}
		seen[m] = true
		p.reclaim = append(p.reclaim, m)
		q = append(q, m)
	}
	ix.evictQ = q
	if len(ix.evictQ) == 0 {
		ix.evictQ = nil
	}
}

// evictFor makes room for need in target's bound by evicting kept frames,
// oldest first, until what target has pending and retained plus need
// fits, or nothing is kept. Retained history never holds a producer back.
// Called by reserve with mu held.
func (ix *index) evictFor(target string, p usage, need usage, lim Limit) {
	for len(ix.kept) > 0 {
		r := ix.retT[target]
		if r == nil || r.n <= 0 && r.bytes <= 0 {
			break
		}
		if p.n+r.n+need.n <= lim.MaxEvents && p.bytes+r.bytes+need.bytes <= lim.MaxBytes {
			break
		}
		ix.evict(ix.kept[0])
	}
}

// evict takes the kept frame m out of the retained history: the next
// commit deletes it. Called with mu held.
func (ix *index) evict(m *frameMeta) {
	ix.unkeep(m)
	m.evicted = true
	ix.shape++
	ix.evictQ = append(ix.evictQ, m)
}

// unevict keeps m, evicted but not deleted yet, for a target moved back
// before it (a rewind or backfill that raced the eviction). Called with mu
// held.
func (ix *index) unevict(m *frameMeta) {
	if m.evicted {
		m.evicted = false
		ix.shape++
	}
}
