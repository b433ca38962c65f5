package wal

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Verify checks every frame and record checksum, the sequence order of the
// frames and every cursor, and returns one error per problem found.
func (l *Log) Verify() []error {
	var errs []error
	err := l.db.View(func(tx *bolt.Tx) error {
		var prevLast uint64
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				errs = append(errs, fmt.Errorf("wal: record key %x is not a sequence", k))
				continue
			}
			first := binary.BigEndian.Uint64(k)
			if first <= prevLast {
				errs = append(errs, fmt.Errorf("wal: frame at sequence %d overlaps the one before (last %d)", first, prevLast))
			}
			h, err := decodeHeader(first, v, true)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			prevLast = first + uint64(h.count) - 1
			if err := decodeRecords(h, 0, func(Record) bool { return true }); err != nil {
				errs = append(errs, err)
			}
		}
		next := l.LastSeq() + 1
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
