package wal

import (
	"encoding/binary"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// frameMeta is what the index keeps about one stored frame.
type frameMeta struct {
	first, last uint64
	count       int64   // records held
	bytes       int64   // their Entry.size
	targets     []tally // per target; nil when the frame is too damaged to tell
	damage      string  // why the frame is damaged; "" when it is sound
	gone        bool    // deleted from the file (reclaimed or released)

	// Retention (retention.go). at is the append time of the first record
	// (Unix ns; 0 until read for a frame loaded from the file); kept marks
	// a frame every target passed that retention keeps; evicted one that
	// retention let go and the next commit deletes.
	at      int64
	kept    bool
	evicted bool
	cum     int64 // record bytes appended up to this frame, itself included
}

// usage is a target's pending load: records routed to it in frames its
// cursor has not passed, plus records reserved by appends in flight.
type usage struct{ n, bytes int64 }

func (u *usage) add(n, bytes int64) { u.n += n; u.bytes += bytes }

// index is what the log knows in memory about its frames and targets: the
// frame list, cursors, quarantine entries waiting for a commit, per-target
// pending load and bounds, byte accounting, damage, and the log's
// lifecycle. mu guards every field. Appenders, readers and drain loops take
// it briefly; the frame list and durable cursors change only in the
// committer (and Release), which hold the committer's txMu first.
type index struct {
	mu sync.Mutex

	frames  []*frameMeta      // stored frames by first sequence; ranges do not overlap
	nextSeq uint64            // next sequence to assign
	cursors map[string]uint64 // committed or pending
	durable map[string]uint64 // committed
	dirty   map[string]uint64 // cursor moves not yet committed
	quar    []QuarantineEntry // quarantine entries not yet committed
	damaged []Damage          // damaged frames met since Open (DamageMet)
	routed  map[string]uint64 // records committed per target since Open
	pend    map[string]*usage // per target, reservations included
	events  int64             // records held in total, reservations included
	bytes   int64

	limits  map[string]Limit // SetLimit's, by target
	def     Limit            // every other target's
	dropped map[string]uint64
	drops   map[string]*dropNote // drops not yet logged

	names    map[string]string // target names, interned: frames share them
	compactQ []*frameMeta      // frames worth compacting, oldest first
	mergeQ   []*frameMeta      // frames just compacted: a run of small ones may end there

	freed    chan struct{} // closed and replaced whenever room frees
	appended chan struct{} // closed and replaced on every commit of records
	closed   bool
	failErr  error         // set once storage failed; every write fails after it
	failed   chan struct{} // closed when failErr is set

	// Retention (retention.go): the policy, the kept frames by first
	// sequence, their totals overall and per target, frames evicted and
	// not yet deleted, and young frames whose compaction waits until they
	// age out of the retention.
	ret      Retention
	kept     []*frameMeta
	retN     int64
	retBytes int64
	retT     map[string]*usage
	evictQ   []*frameMeta
	deferred []*frameMeta
	goneAt   int64 // newest append time of a frame deleted since Open (SeqAt)
	// shape counts changes that may make a frame not whole (deletion,
	// rewrite, damage, eviction); fc caches retainedFrom against it.
	shape uint64
	fc    floorCache
	cum   int64 // record bytes appended (frameMeta.cum of the newest)
}

func (ix *index) init(def Limit) {
	ix.cursors = map[string]uint64{}
	ix.durable = map[string]uint64{}
	ix.dirty = map[string]uint64{}
	ix.routed = map[string]uint64{}
	ix.pend = map[string]*usage{}
	ix.limits = map[string]Limit{}
	ix.dropped = map[string]uint64{}
	ix.drops = map[string]*dropNote{}
	ix.names = map[string]string{}
	ix.retT = map[string]*usage{}
	ix.def = def
	ix.freed = make(chan struct{})
	ix.appended = make(chan struct{})
	ix.failed = make(chan struct{})
}

// intern returns the one copy of ts's target names the index keeps.
func (ix *index) intern(ts []tally) []tally {
	for i := range ts {
		if s, ok := ix.names[ts[i].target]; ok {
			ts[i].target = s
		} else {
			ix.names[ts[i].target] = ts[i].target
		}
	}
	return ts
}

// use returns target's pending load, creating it.
func (ix *index) use(target string) *usage {
	u := ix.pend[target]
	if u == nil {
		u = &usage{}
		ix.pend[target] = u
	}
	return u
}

// wake tells waiting appenders that room may have freed.
func (ix *index) wake() {
	close(ix.freed)
	ix.freed = make(chan struct{})
}

// writable returns nil if the log takes writes, ErrClosed or the failure.
func (ix *index) writable() error {
	if ix.failErr != nil {
		return ix.failErr
	}
	if ix.closed {
		return ErrClosed
	}
	return nil
}

// counts reports whether m's records for target count in its pending load:
// its cursor (none counts as 0) has not passed the frame.
func (ix *index) counts(target string, m *frameMeta) bool {
	return ix.cursors[target] <= m.last
}

// cursorView is a set of committed cursors: the index's, with the moves a
// transaction is about to commit applied.
type cursorView struct {
	durable, moves map[string]uint64
}

func (v cursorView) get(t string) (uint64, bool) {
	if c, ok := v.moves[t]; ok {
		return c, true
	}
	c, ok := v.durable[t]
	return c, ok
}

// passed reports whether every target that may need a record of m has a
// cursor past it, so that m can be deleted. A target without a cursor
// pins its records. When m's targets are unknown (damaged), every target
// with a cursor must have passed it.
func (v cursorView) passed(m *frameMeta) bool {
	if m.targets == nil && m.damage != "" {
		for t := range v.durable {
			if c, _ := v.get(t); c <= m.last {
				return false
			}
		}
		for _, c := range v.moves {
			if c <= m.last {
				return false
			}
		}
		return true
	}
	for _, t := range m.targets {
		if c, ok := v.get(t.target); !ok || c <= m.last {
			return false
		}
	}
	return true
}

// worthCompacting reports whether rewriting m keeping only the records
// still needed frees at least half of it: every target that has not passed
// m has not started it either (it lags, as a dead or removed target does),
// and at least one target has passed it.
func (v cursorView) worthCompacting(m *frameMeta) bool {
	if m.damage != "" || m.gone || m.kept || m.evicted {
		return false
	}
	var needed int64
	passedAny := false
	for _, t := range m.targets {
		c, ok := v.get(t.target)
		switch {
		case ok && c > m.last:
			passedAny = true
		case !ok || c <= m.first:
			needed += t.n
		default:
			return false // a target is inside the frame: it is passed soon
		}
	}
	return passedAny && needed*2 <= m.count
}

// settled reports whether m holds only records of targets that lag: every
// target of it has not started it, none has passed it. Such frames change
// only when a target reaches them, so merging them is safe.
func (v cursorView) settled(m *frameMeta) bool {
	if m.damage != "" || m.gone || len(m.targets) == 0 {
		return false
	}
	for _, t := range m.targets {
		if c, ok := v.get(t.target); ok && c > m.first {
			return false
		}
	}
	return true
}

// index returns m's position in the frame list, or -1.
func (ix *index) index(m *frameMeta) int {
	i := sort.Search(len(ix.frames), func(i int) bool { return ix.frames[i].first >= m.first })
	if i < len(ix.frames) && ix.frames[i] == m {
		return i
	}
	return -1
}

// crossing returns the frames whose last sequence lies in [from, to): those
// a cursor moving from from to to passes.
func (ix *index) crossing(from, to uint64) []*frameMeta {
	i := sort.Search(len(ix.frames), func(i int) bool { return ix.frames[i].last >= from })
	j := i
	for j < len(ix.frames) && ix.frames[j].last < to {
		j++
	}
	return ix.frames[i:j]
}

// find returns the frame stored under first, or nil.
func (ix *index) find(first uint64) *frameMeta {
	i := sort.Search(len(ix.frames), func(i int) bool { return ix.frames[i].first >= first })
	if i < len(ix.frames) && ix.frames[i].first == first {
		return ix.frames[i]
	}
	return nil
}

// moveCursor moves target's cursor to c (never back), taking the frames it
// passes out of the target's pending load and waking appenders waiting
// for room.
func (ix *index) moveCursor(target string, c uint64) {
	c0, ok := ix.cursors[target]
	if ok && c <= c0 {
		return
	}
	freed := false
	for _, m := range ix.crossing(c0, c) {
		for _, t := range m.targets {
			if t.target == target {
				ix.use(target).add(-t.n, -t.bytes)
				freed = true
			}
		}
	}
	ix.cursors[target] = c
	if freed {
		ix.wake()
	}
}

// setTallies replaces m's tallies and last sequence (after a rewrite),
// keeping the pending load of every target that counts m in step.
func (ix *index) setTallies(m *frameMeta, targets []tally, count, bytes int64, last uint64) {
	ix.shape++
	if m.kept {
		ix.countKept(m, -1)
		defer ix.countKept(m, 1)
	}
	for _, t := range m.targets {
		if ix.counts(t.target, m) {
			ix.use(t.target).add(-t.n, -t.bytes)
		}
	}
	m.last = last
	targets = ix.intern(targets)
	for _, t := range targets {
		if ix.counts(t.target, m) {
			ix.use(t.target).add(t.n, t.bytes)
		}
	}
	ix.events += count - m.count
	ix.bytes += bytes - m.bytes
	m.targets, m.count, m.bytes = targets, count, bytes
}

// remove deletes frames marked gone from the list and the totals. Their
// pending load must have been taken out already (passed frames) or by the
// caller.
func (ix *index) removeGone() {
	ix.shape++
	kept := ix.frames[:0]
	for _, m := range ix.frames {
		if m.gone {
			ix.unkeep(m)
			ix.goneAt = max(ix.goneAt, m.at)
			ix.events -= m.count
			ix.bytes -= m.bytes
			continue
		}
		kept = append(kept, m)
	}
	clear(ix.frames[len(kept):])
	ix.frames = kept
}

// The index's side of the Log: cursors, quarantine, accounting.

// Routed returns how many records routed to target were committed since
// the log was opened, and the last committed sequence, as of one moment.
func (l *Log) Routed(target string) (n, lastSeq uint64) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.routed[target], l.lastSeq.Load()
}

// FirstSeq returns the first sequence of the oldest frame held, or
// LastSeq()+1 when the log holds none.
func (l *Log) FirstSeq() uint64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if len(l.ix.frames) == 0 {
		return l.lastSeq.Load() + 1
	}
	return l.ix.frames[0].first
}

// Events returns the number of records held, including those being
// appended.
func (l *Log) Events() int64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.events
}

// Bytes returns the record bytes held (Entry data, key and name, the
// measure the bounds use), including records being appended. It is the
// same after a restart.
func (l *Log) Bytes() int64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.bytes
}

// Appended returns a channel that is closed at the next commit of new
// records. Drain loops wait on it instead of polling.
func (l *Log) Appended() <-chan struct{} {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.appended
}

// Register makes sure target has a cursor, starting it after the last
// record so that it receives only records appended from now on. It returns
// the target's cursor.
func (l *Log) Register(target string) uint64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if c, ok := l.ix.cursors[target]; ok {
		return c
	}
	c := l.ix.nextSeq
	l.ix.moveCursor(target, c)
	if !l.readOnly {
		l.ix.dirty[target] = c
	}
	return c
}

// Cursor returns target's cursor (the next sequence it has to deliver) and
// whether the target has one.
func (l *Log) Cursor(target string) (uint64, bool) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	c, ok := l.ix.cursors[target]
	return c, ok
}

// Cursors returns every target's cursor.
func (l *Log) Cursors() map[string]uint64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	m := make(map[string]uint64, len(l.ix.cursors))
	for t, c := range l.ix.cursors {
		m[t] = c
	}
	return m
}

// Advance moves target's cursor to next: every record below next has been
// delivered or quarantined. The move is committed within
// CursorSyncInterval; a cursor never moves back. It fails with ErrClosed
// once the log is closed and with the failure once the log has failed.
func (l *Log) Advance(target string, next uint64) error {
	if l.readOnly {
		return ErrReadOnly
	}
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if err := l.ix.writable(); err != nil {
		return err
	}
	if next <= l.ix.cursors[target] {
		return nil
	}
	l.ix.moveCursor(target, next)
	l.ix.dirty[target] = next
	return nil
}

// Quarantine records that target gave up on r for good. The entry is
// committed no later than any cursor move made after this call.
func (l *Log) Quarantine(target string, r Record, reason string, attempts int) error {
	if l.readOnly {
		return ErrReadOnly
	}
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if err := l.ix.writable(); err != nil {
		return err
	}
	l.ix.quar = append(l.ix.quar, QuarantineEntry{
		Target: target, Seq: r.Seq, Error: reason, Attempts: attempts, Time: time.Now().UTC(),
		Key: strings.Clone(r.Key), Name: r.Name, Data: append(json.RawMessage(nil), r.Data...), // r's may alias its frame
	})
	return nil
}

// Quarantined returns target's quarantine, oldest first.
func (l *Log) Quarantined(target string) ([]QuarantineEntry, error) {
	var out []QuarantineEntry
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var q QuarantineEntry
			if err := json.Unmarshal(v, &q); err != nil {
				return &corruptError{binary.BigEndian.Uint64(k), "bad quarantine entry"}
			}
			out = append(out, q)
			return nil
		})
	})
	return out, err
}

// QuarantineTargets returns the targets that have a quarantine.
func (l *Log) QuarantineTargets() []string {
	var out []string
	_ = l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	sort.Strings(out)
	return out
}
