package wal

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"
)

// releasedRecord is one line of Release's export.
type releasedRecord struct {
	Seq  uint64          `json:"seq"`
	Key  string          `json:"key"`
	Name string          `json:"eventName"`
	Data json.RawMessage `json:"record"`
}

// Release lets a target's backlog go, on purpose: it writes every record
// pending for target (from its cursor, or every held record routed to it
// if it has none) to w as one JSON line each,
// {"seq":…,"key":…,"eventName":…,"record":{…}}, flushes w and, if w has a
// Sync method (an *os.File), syncs it; only then it deletes the target's
// cursor and removes the target from every frame, so the frames it pinned
// can be reclaimed. It returns how many records were written. Records in
// damaged frames cannot be written; they are in the target's quarantine.
//
// Nothing may route records to target any more (the relay releases only
// targets that are not configured) and no drain loop may run for it. On an
// error before the release commits, nothing is released.
func (l *Log) Release(target string, w io.Writer) (int, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	// Holding txMu, no commit lands between the export and the release.
	l.c.txMu.Lock()
	defer l.c.txMu.Unlock()
	l.ix.mu.Lock()
	err := l.ix.writable()
	from, ok := l.ix.cursors[target]
	l.ix.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if !ok {
		from = 0
	}
	bw := bufio.NewWriter(w)
	n := 0
	var werr error
	_, err = l.Read(context.Background(), from, target, func(r Record) bool {
		b, err := json.Marshal(releasedRecord{Seq: r.Seq, Key: r.Key, Name: r.Name, Data: r.Data})
		if err != nil {
			werr = fmt.Errorf("wal: release %s: record %d: %w", target, r.Seq, err)
			return false
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			werr = fmt.Errorf("wal: release %s: writing the export: %w", target, err)
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = werr
	}
	if err == nil {
		if err = bw.Flush(); err != nil {
			err = fmt.Errorf("wal: release %s: writing the export: %w", target, err)
		}
	}
	if s, ok := w.(interface{ Sync() error }); ok && err == nil {
		if err = s.Sync(); err != nil {
			err = fmt.Errorf("wal: release %s: syncing the export: %w", target, err)
		}
	}
	if err != nil {
		return 0, err
	}

	// Rewrite every frame that lists the target, without it.
	l.ix.mu.Lock()
	var frames []*frameMeta
	for _, m := range l.ix.frames {
		for _, t := range m.targets {
			if t.target == target {
				frames = append(frames, m)
				break
			}
		}
	}
	// Only committed cursors may let a frame go: a cursor move not yet
	// committed may come with a quarantine entry not yet committed either.
	durable := map[string]uint64{}
	for t, c := range l.ix.durable {
		if t != target {
			durable[t] = c
		}
	}
	l.ix.mu.Unlock()
	view := cursorView{durable: durable}
	rewrote := map[*frameMeta]rewrite{}
	err = l.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for _, m := range frames {
			recs, err := loadFrame(rb, m.first)
			if err != nil {
				// Damaged: its records are lost for every target. The
				// others that still needed them get their quarantine
				// entries now, and the frame goes, since the released
				// target would pin it for good.
				l.ix.mu.Lock()
				if m.damage == "" {
					m.damage = reason(err)
				}
				var others []string
				for _, t := range l.ix.affected(m) {
					if t != target {
						others = append(others, t)
					}
				}
				l.ix.mu.Unlock()
				if err := putQuarantine(tx, damageEntries(m, others)); err != nil {
					return err
				}
				if err := rb.Delete(seqKey(m.first)); err != nil {
					return err
				}
				rewrote[m] = rewrite{}
				continue
			}
			nv, nt := reencode(l.codec, m.first, m.last, recs, func(r *Record) []string {
				var keep []string
				for _, t := range r.Targets {
					if t != target {
						keep = append(keep, t)
					}
				}
				return keep
			})
			rw := rewrite{value: nv}
			if nv != nil {
				rw.targets, rw.count, rw.bytes = nt.targets, nt.count, nt.bytes
				if view.passed(&frameMeta{first: m.first, last: m.last, targets: rw.targets}) {
					rw.value = nil
				}
			}
			if rw.value == nil {
				if err := rb.Delete(seqKey(m.first)); err != nil {
					return err
				}
			} else if err := rb.Put(seqKey(m.first), rw.value); err != nil {
				return err
			}
			rewrote[m] = rw
		}
		return tx.Bucket(bucketCursors).Delete([]byte(target))
	})
	if err != nil {
		if isNoSpace(err) {
			return 0, fmt.Errorf("wal: release %s: %w", target, ErrNoSpace)
		}
		return 0, l.stop(err)
	}
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	for m, rw := range rewrote {
		if rw.value == nil {
			l.ix.setTallies(m, nil, 0, 0, m.last)
			m.gone = true
		} else {
			l.ix.setTallies(m, rw.targets, rw.count, rw.bytes, m.last)
		}
	}
	l.ix.removeGone()
	delete(l.ix.cursors, target)
	delete(l.ix.durable, target)
	delete(l.ix.dirty, target)
	delete(l.ix.pend, target)
	l.ix.wake()
	l.log.Warn("wal: target released: its pending records were exported and let go", "target", target, "records", n)
	return n, nil
}
