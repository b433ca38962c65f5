package wal

// This file holds Read's promise about the data it hands out: a record's
// Data and Key may alias the frame's decompressed records, which the log
// never writes to or reuses, so a reader may keep them without copying (the
// delivery engine does). A reader keeping a few records of a large frame
// would then keep the whole frame alive: for a target that owns less than
// half of a frame's bytes, Read copies its records' data into one buffer
// per frame (and each key) instead, so what a reader keeps is at most about
// twice the bytes of the records it was given.

// sparseFor reports whether target owns so little of the frame h that its
// records' data should be copied out rather than alias the frame. Version 1
// frames carry no tallies and are always copied out; target "" is given
// every record and never is.
func sparseFor(h *frameHeader, target string) bool {
	if target == "" {
		return false
	}
	for _, t := range h.targets {
		if t.target == target {
			return t.bytes*2 < int64(h.rawLen)
		}
	}
	return true
}

// dataCopier copies records' data into one buffer per frame, sized by the
// target's tally, so copying costs one allocation per frame and not one per
// record.
type dataCopier struct {
	buf  []byte
	size int64 // the target's bytes in the frame: an upper bound of its data
}

func newDataCopier(h *frameHeader, target string) *dataCopier {
	for _, t := range h.targets {
		if t.target == target {
			return &dataCopier{size: t.bytes}
		}
	}
	return &dataCopier{}
}

// copy returns a copy of data, full (an append to it copies again).
func (c *dataCopier) copy(data []byte) []byte {
	if cap(c.buf)-len(c.buf) < len(data) {
		c.buf = make([]byte, 0, max(int64(len(data)), c.size))
	}
	start := len(c.buf)
	c.buf = append(c.buf, data...)
	return c.buf[start:len(c.buf):len(c.buf)]
}
