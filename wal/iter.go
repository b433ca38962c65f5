package wal

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// This file holds the one walk over stored frames that opening a log,
// Read, Backlogs, Verify and salvage share, so that each of them meets a
// damaged frame the same way: reported, with the range it covers, and
// passed over.

// storedFrame is one frame as scanFrames yields it. Its bytes alias the
// transaction's memory and die with it.
type storedFrame struct {
	// first is the frame's key. A key that is not a sequence counts as the
	// sequence after the previous frame.
	first uint64
	// last is the highest sequence the frame covers: from its header, or,
	// when the header is damaged, from its neighbours (the next frame's key
	// minus one, or end for the newest frame).
	last uint64
	// h is the parsed header; valid when err is nil.
	h frameHeader
	// err wraps ErrCorrupt when the key or header is damaged.
	err error
}

// records decodes the frame's records. An error (wrapping ErrCorrupt) means
// the frame is damaged and none of its records can be trusted.
func (f *storedFrame) records() ([]Record, error) {
	if f.err != nil {
		return nil, f.err
	}
	return decodeRecords(&f.h)
}

// scanFrames calls fn for every frame of tx whose range reaches from or
// beyond, in sequence order, until fn returns false. end is the last
// sequence the log assigned, used as the end of a damaged newest frame. A
// damaged frame is passed like any other, with err set: scanFrames never
// stops at one.
func scanFrames(tx *bolt.Tx, from, end uint64, fn func(f *storedFrame) bool) {
	c := tx.Bucket(bucketRecords).Cursor()
	k, v := c.Seek(seqKey(from))
	if k == nil || len(k) != 8 || binary.BigEndian.Uint64(k) != from {
		// The frame holding from starts before it.
		if pk, pv := c.Prev(); pk != nil {
			k, v = pk, pv
		} else {
			k, v = c.First()
		}
	}
	var prevLast uint64
	for k != nil {
		nk, nv := c.Next()
		f := storedFrame{}
		if len(k) != 8 {
			f.first = prevLast + 1
			f.err = &corruptError{f.first, fmt.Sprintf("record key %x is not a sequence", k)}
		} else {
			f.first = binary.BigEndian.Uint64(k)
			f.h, f.err = decodeHeader(f.first, v)
			f.last = f.h.last
		}
		if f.err != nil {
			f.last = max(end, f.first)
			if nk != nil && len(nk) == 8 {
				if n := binary.BigEndian.Uint64(nk); n > f.first {
					f.last = n - 1
				}
			}
		}
		if f.last >= from {
			if !fn(&f) {
				return
			}
		}
		prevLast = f.last
		k, v = nk, nv
	}
}

// trustedTable reports whether the frame's target table can be trusted
// although its records cannot: a version 2 or 3 header passed its own checksum.
func (f *storedFrame) trustedTable() bool {
	return f.err == nil && f.h.version >= frameV2
}
