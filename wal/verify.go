package wal

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Verify checks every frame and record checksum, the sequence order of the
// frames and every cursor, and returns one error per problem found. Frame
// damage errors wrap ErrCorrupt and name the sequence range.
func (l *Log) Verify() (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = append(errs, damagedFile(l.db.Path(), r))
		}
	}()
	last := l.LastSeq()
	err := l.db.View(func(tx *bolt.Tx) error {
		var prevLast uint64
		scanFrames(tx, 0, last, func(f *storedFrame) bool {
			if f.first <= prevLast {
				errs = append(errs, fmt.Errorf("wal: frame at sequence %d overlaps the one before (last %d)", f.first, prevLast))
			}
			prevLast = max(prevLast, f.last)
			if _, err := f.records(); err != nil {
				errs = append(errs, fmt.Errorf("%w (the frame covers sequences %d-%d)", err, f.first, f.last))
			}
			return true
		})
		next := last + 1
		return tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				errs = append(errs, fmt.Errorf("wal: cursor of %q is %d bytes, want 8", k, len(v)))
			} else if c := binary.BigEndian.Uint64(v); c > next {
				errs = append(errs, fmt.Errorf("wal: cursor of %q is %d, past the end of the log (%d)", k, c, next))
			}
			return nil
		})
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}
