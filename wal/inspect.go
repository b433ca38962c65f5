package wal

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file holds read-only helpers for inspection tools (cmd/walinspect).
// None of them changes the file; all of them work on a log opened with
// OpenReadOnly as well as on one opened with Open.

// Backlog is what one target still has to deliver, as the log holds it.
type Backlog struct {
	// Cursor is the target's cursor, the next sequence it has to deliver;
	// 0 when HasCursor is false.
	Cursor uint64
	// HasCursor reports whether the target has a cursor. A target that held
	// records are routed to but that has no cursor (it was never registered)
	// counts every record routed to it as pending.
	HasCursor bool
	// Pending is the number of held records at or past Cursor that are
	// routed to the target.
	Pending int64
	// OldestSeq is the sequence of the oldest pending record, 0 if none.
	OldestSeq uint64
	// OldestAppend is when the oldest pending record was appended; the zero
	// time if none is pending.
	OldestAppend time.Time
}

// Backlogs scans the held records once and returns the backlog of every
// target that has a cursor or that a held record is routed to. Frames that
// every one of their targets has passed are skipped without being
// decompressed. If progress is not nil it is called after each frame with
// the last sequence of that frame. A damaged frame is passed over and
// listed by Damage afterwards (its records are not counted); an error
// wrapping ErrCorrupt means bbolt could not read the file.
func (l *Log) Backlogs(progress func(seq uint64)) (out map[string]Backlog, err error) {
	out = map[string]Backlog{}
	for t, c := range l.Cursors() {
		out[t] = Backlog{Cursor: c, HasCursor: true}
	}
	last := l.LastSeq()
	var damaged []damagedFrame
	defer func() {
		if r := recover(); r != nil {
			err = damagedFile(l.db.Path(), r)
		}
		for _, d := range damaged {
			l.noteDamage(d)
		}
	}()
	err = l.db.View(func(tx *bolt.Tx) error {
		scanFrames(tx, 0, last, func(f *storedFrame) bool {
			if f.first > last {
				return false
			}
			behind := f.err != nil
			for _, t := range f.h.targets {
				b, ok := out[t.target]
				if !ok {
					out[t.target] = Backlog{}
				}
				if b.Cursor <= f.last {
					behind = true
				}
			}
			if behind {
				recs, err := f.records()
				if err != nil {
					damaged = append(damaged, damagedFrame{first: f.first, last: f.last, reason: reason(err), targets: f.h.targets, known: f.trustedTable()})
				}
				for _, r := range recs {
					for _, t := range r.Targets {
						b := out[t]
						if r.Seq < b.Cursor {
							continue
						}
						if b.Pending == 0 {
							b.OldestSeq = r.Seq
							b.OldestAppend = r.AppendTime
						}
						b.Pending++
						out[t] = b
					}
				}
			}
			if progress != nil {
				progress(f.last)
			}
			return true
		})
		return nil
	})
	return out, err
}

// Frames returns the number of frames (group commits) the log holds.
func (l *Log) Frames() int {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return len(l.ix.frames)
}

// CheckStorage runs bbolt's own consistency check of the file's pages
// (double-freed, unreachable or out-of-bounds pages) in a read-only
// transaction and returns one error per problem found. It complements
// Verify, which checks the log's own frames and cursors.
func (l *Log) CheckStorage() (errs []error) {
	// tx.Check rebuilds the free list in a goroutine where a damaged page
	// panics beyond recover: walk the pages here first, recovering.
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, damagedFile(l.db.Path(), r))
		}
	}()
	if err := l.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) })
	}); err != nil {
		return []error{err}
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, fmt.Errorf("wal: storage: %w", err))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}
