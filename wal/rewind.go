package wal

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors of Rewind and Backfill.
var (
	// ErrNoCursor is returned by Rewind for a target that has no cursor.
	ErrNoCursor = errors.New("wal: target has no cursor")
	// ErrAhead is returned by Rewind for a sequence past the target's
	// cursor: a rewind moves a cursor back, never skips records.
	ErrAhead = errors.New("wal: past the target's cursor")
)

// Rewind moves target's cursor back to to, durably before it returns, so
// that the records routed to target from to on are delivered again
// (at-least-once, on purpose). It returns how many such records there are
// between to and the old cursor. to equal to the cursor changes nothing.
//
// It fails with an error wrapping ErrNoCursor for a target without a
// cursor, ErrAhead for a sequence past the cursor, and ErrNotRetained (a
// *RetainedError naming the oldest available record) for one older than
// the retained history (Retained). No drain loop may run for target while
// it rewinds (delivery.Engine.Restart stops it): the loop would move the
// cursor forward again from where it was.
func (l *Log) Rewind(target string, to uint64) (int64, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	// Holding txMu, no commit reclaims what the rewind brings back.
	l.c.txMu.Lock()
	defer l.c.txMu.Unlock()
	ix := &l.ix
	ix.mu.Lock()
	err := ix.writable()
	c0, ok := ix.cursors[target]
	floor := ix.floor(l.lastSeq.Load())
	ix.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, fmt.Errorf("%w: %s", ErrNoCursor, target)
	case to > c0:
		return 0, fmt.Errorf("%w: sequence %d is past %s's cursor %d (a rewind moves back; nothing after the cursor was delivered yet)", ErrAhead, to, target, c0)
	case to == c0:
		return 0, nil
	case to < floor || to == 0:
		return 0, l.notRetained(to, time.Time{})
	}
	var n int64
	if _, err := l.Read(context.Background(), to, target, func(r Record) bool {
		if r.Seq >= c0 {
			return false
		}
		n++
		return true
	}); err != nil {
		return 0, fmt.Errorf("wal: rewind %s: %w", target, err)
	}
	if err := l.putCursor(target, to, nil); err != nil {
		return 0, fmt.Errorf("wal: rewind %s: %w", target, err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.moveBack(target, to, c0)
	l.log.Info("wal: target rewound: the records from the new cursor on are delivered again", "target", target, "from", c0, "to", to, "records", n)
	return n, nil
}

// moveBack sets target's cursor to c, below its cursor c0: the frames
// between count in its pending load again, and those retention kept that
// hold its records are no longer passed. Called with mu held, after the
// cursor was committed.
func (ix *index) moveBack(target string, c, c0 uint64) {
	for _, m := range ix.crossing(c, c0) {
		for _, t := range m.targets {
			if t.target == target {
				ix.use(target).add(t.n, t.bytes)
				ix.unkeep(m)
				ix.unevict(m) // evicted after the rewind checked the range
			}
		}
	}
	ix.cursors[target] = c
	ix.durable[target] = c
	delete(ix.dirty, target)
}

// putCursor commits target's cursor c in one write transaction, with the
// frames in rewrites written over theirs. Called with txMu held.
func (l *Log) putCursor(target string, c uint64, rewrites map[*frameMeta][]byte) error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for m, v := range rewrites {
			if err := rb.Put(seqKey(m.first), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketCursors).Put([]byte(target), seqKey(c))
	})
	if err == nil {
		return nil
	}
	if isNoSpace(err) {
		return ErrNoSpace
	}
	return l.stop(err)
}

// SeqAt returns the sequence of the first record appended at or after t
// that the log still holds for every target (within the retained history,
// see Retained), or the next sequence to be appended when every record is
// older than t. It fails with ErrNotRetained (a *RetainedError naming the
// oldest available record) when t is older than the retained history and
// records before it were reclaimed: the first record at or after t may be
// gone.
func (l *Log) SeqAt(t time.Time) (uint64, error) {
	l.ix.mu.Lock()
	last := l.lastSeq.Load()
	first := l.ix.retainedFrom(last)
	var frames []*frameMeta
	if first != nil {
		i := l.ix.index(first)
		frames = append(frames, l.ix.frames[i:]...)
	}
	// The newest frame whose first record is at or before t holds the
	// answer, or the one after it does.
	at := func(m *frameMeta) int64 {
		if m.at == 0 {
			l.frameTime(m)
		}
		return m.at
	}
	want := t.UnixNano()
	i := sort.Search(len(frames), func(i int) bool { return at(frames[i]) > want })
	goneAt := l.ix.goneAt
	l.ix.mu.Unlock()
	if i == 0 {
		// Every record held is after t.
		switch {
		case first != nil && first.first == 1, first == nil && last == 0:
			return max(1, l.floorSeq(first, last)), nil // nothing was reclaimed
		case first == nil && !t.Before(time.Now()):
			return last + 1, nil
		case goneAt != 0 && goneAt < want:
			// The records deleted were appended before t.
			return l.floorSeq(first, last), nil
		}
		return 0, l.notRetained(0, t)
	}
	// Records of frames[i-1] are at or after its first record's time; find
	// the first at or after t (a merged frame holds several times).
	m := frames[i-1]
	seq := uint64(0)
	_ = l.db.View(func(tx *bolt.Tx) error {
		recs, err := loadFrame(tx.Bucket(bucketRecords), m.first)
		if err != nil {
			return nil
		}
		for _, r := range recs {
			if !r.AppendTime.Before(t) {
				seq = r.Seq
				return nil
			}
		}
		return nil
	})
	if seq != 0 {
		return seq, nil
	}
	if i < len(frames) {
		return frames[i].first, nil
	}
	return last + 1, nil
}

func (l *Log) floorSeq(first *frameMeta, last uint64) uint64 {
	if first == nil {
		return last + 1
	}
	return first.first
}

// Backfill routes to target the retained records from sequence from on
// (0: from the oldest retained record, see Retained) that route accepts
// (records already routed to it are left as they are) and moves its
// cursor back to from, durably before it returns, so that a target added
// after them receives them: a target that starts from the oldest retained
// record. A target without a cursor gets one. It returns how many records
// were routed to target anew.
//
// The frames holding those records are rewritten in one write transaction
// (the cost of a backfill is a rewrite of the retained history from from
// on). It fails with ErrNotRetained (a *RetainedError) for a sequence
// older than the retained history and ErrAhead for one past the target's
// cursor. No drain loop may run for target meanwhile (see Rewind).
func (l *Log) Backfill(target string, from uint64, route func(Record) bool) (int, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	l.c.txMu.Lock()
	defer l.c.txMu.Unlock()
	ix := &l.ix
	ix.mu.Lock()
	err := ix.writable()
	last := l.lastSeq.Load()
	c0, ok := ix.cursors[target]
	if !ok {
		c0 = last + 1
	}
	floor := ix.floor(last)
	if from == 0 {
		from = floor
	}
	var frames []*frameMeta
	for _, m := range ix.frames {
		if m.last >= from && m.first < c0 {
			frames = append(frames, m)
		}
	}
	ix.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case from > c0:
		return 0, fmt.Errorf("%w: sequence %d is past %s's cursor %d", ErrAhead, from, target, c0)
	case from < floor:
		return 0, l.notRetained(from, time.Time{})
	}
	// Every frame from floor on is whole, so each can be decoded and
	// rewritten with target added to the records route accepts.
	type rewritten struct {
		value []byte
		t     frameTally
	}
	out := map[*frameMeta]rewritten{}
	n := 0
	err = l.db.View(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for _, m := range frames {
			recs, err := loadFrame(rb, m.first)
			if err != nil {
				return fmt.Errorf("frame at %d: %w", m.first, err)
			}
			added := 0
			nv, nt := reencode(l.codec, m.first, m.last, recs, func(r *Record) []string {
				ts := r.Targets
				if r.Seq >= from && r.Seq < c0 && !contains(ts, target) && route(*r) {
					ts = append(append([]string(nil), ts...), target)
					added++
				}
				if ts == nil {
					ts = []string{}
				}
				return ts
			})
			if added == 0 {
				continue
			}
			out[m] = rewritten{nv, nt}
			n += added
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("wal: backfill %s: %w", target, err)
	}
	values := make(map[*frameMeta][]byte, len(out))
	for m, rw := range out {
		values[m] = rw.value
	}
	if err := l.putCursor(target, from, values); err != nil {
		return 0, fmt.Errorf("wal: backfill %s: %w", target, err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ok {
		ix.moveBack(target, from, c0)
	} else {
		ix.moveCursor(target, from)
		ix.durable[target] = from
		delete(ix.dirty, target)
	}
	for m, rw := range out {
		ix.setTallies(m, rw.t.targets, rw.t.count, rw.t.bytes, m.last)
		ix.unkeep(m)  // target has not passed it
		ix.unevict(m) // evicted after the backfill checked the range
	}
	l.log.Info("wal: target backfilled from the retained history", "target", target, "from", from, "records", n)
	return n, nil
}
