package wal

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// QuarantineItem is a quarantine entry with its failure history: what an
// operator lists before re-driving or dropping it. It is stored as the
// entry's JSON with the extra fields, so Quarantined still reads it.
type QuarantineItem struct {
	QuarantineEntry
	// FirstFailure is when the event was first quarantined; the embedded
	// Time is its last failure. For an entry never re-driven they are the
	// same.
	FirstFailure time.Time `json:"firstFailure"`
}

// LastFailure returns when the event last failed.
func (q *QuarantineItem) LastFailure() time.Time { return q.Time }

// QuarantineItems returns target's committed quarantine, oldest sequence
// first. An entry quarantined a moment ago may not be committed yet (see
// Options.CursorSyncInterval).
func (l *Log) QuarantineItems(target string) ([]QuarantineItem, error) {
	var out []QuarantineItem
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			q, err := decodeQuarantineItem(k, v)
			if err != nil {
				return err
			}
			out = append(out, q)
			return nil
		})
	})
	return out, err
}

// QuarantineItemAt returns target's quarantine entry for seq and whether
// there is one.
func (l *Log) QuarantineItemAt(target string, seq uint64) (QuarantineItem, bool, error) {
	var q QuarantineItem
	found := false
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		k := seqKey(seq)
		v := b.Get(k)
		if v == nil {
			return nil
		}
		var err error
		q, err = decodeQuarantineItem(k, v)
		found = err == nil
		return err
	})
	return q, found, err
}

func decodeQuarantineItem(k, v []byte) (QuarantineItem, error) {
	var q QuarantineItem
	if err := json.Unmarshal(v, &q); err != nil {
		return q, &corruptError{binary.BigEndian.Uint64(k), "bad quarantine entry"}
	}
	// Copy the record out: v lives only as long as the transaction, and
	// json.RawMessage keeps a slice of what it was given.
	q.Data = append(json.RawMessage(nil), q.Data...)
	if q.FirstFailure.IsZero() {
		q.FirstFailure = q.Time
	}
	return q, nil
}

// ReplaceQuarantine writes items over target's entries of the same
// sequences, in one transaction that is durable when it returns, and
// returns how many it wrote. An item whose entry is gone (dropped in the
// meantime) is not written back. A re-driven event that fails again is put
// back this way.
func (l *Log) ReplaceQuarantine(target string, items []QuarantineItem) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	n := 0
	err := l.quarantineTx(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		for i := range items {
			q := items[i]
			q.Target = target
			k := seqKey(q.Seq)
			if b.Get(k) == nil {
				continue
			}
			v, err := json.Marshal(q)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// DeleteQuarantine removes the entries of seqs from target's quarantine,
// in one transaction that is durable when it returns, and returns the
// entries it removed (sequences without an entry are skipped).
func (l *Log) DeleteQuarantine(target string, seqs []uint64) ([]QuarantineItem, error) {
	var out []QuarantineItem
	err := l.quarantineTx(func(tx *bolt.Tx) error {
		out = out[:0]
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		for _, seq := range seqs {
			k := seqKey(seq)
			v := b.Get(k)
			if v == nil {
				continue
			}
			q, err := decodeQuarantineItem(k, v)
			if err != nil {
				return err
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			out = append(out, q)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// quarantineTx runs fn in its own write transaction. A storage failure
// stops the log as a failed commit does; a full disk returns ErrNoSpace.
func (l *Log) quarantineTx(fn func(tx *bolt.Tx) error) error {
	if l.readOnly {
		return ErrReadOnly
	}
	if err := l.writable(); err != nil {
		return err
	}
	// Write transactions go one at a time, the committer's included.
	l.c.txMu.Lock()
	err := l.db.Update(fn)
	l.c.txMu.Unlock()
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, ErrCorrupt):
		return err
	case isNoSpace(err):
		return ErrNoSpace
	}
	if werr := l.writable(); werr != nil {
		return werr // closed under us
	}
	return fmt.Errorf("wal: quarantine: %w", l.stop(err))
}

// QuarantineCount returns how many committed entries target's quarantine
// holds, without reading them.
func (l *Log) QuarantineCount(target string) int {
	n := 0
	_ = l.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketQuarantine).Bucket([]byte(target)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n
}

// writable returns nil while the log takes writes, else ErrClosed or the
// failure that stopped it.
func (l *Log) writable() error {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.writable()
}
