package wal

import (
	"sync"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
)

// decodedCache keeps the last few frames Read decompressed, so that
// targets reading the same frames (and a window ending inside a frame,
// whose next window starts there) decompress and check each frame once
// instead of once per read. Records handed out alias the cached frames'
// bytes, which nothing writes to (see share.go).
//
// A frame is known by its key, range, counts and stored checksum: a frame
// rewritten in place (compaction, release) differs in one of them and is
// decoded again. A frame damaged on disk after it was cached still reads
// from the cache (the records are the intact ones); compaction and the next
// read after it leaves the cache find the damage.
type decodedCache struct {
	mu    sync.Mutex
	slots [decodedSlots]decodedFrame
	next  int // the slot to replace next
}

const (
	decodedSlots = 4
	// decodedMaxRaw is the largest frame cached, so the cache holds at most
	// decodedSlots × decodedMaxRaw bytes (frames are cut at about 512 KiB;
	// a single larger append makes a larger frame).
	decodedMaxRaw = 4 << 20
)

type frameID struct {
	version      int
	codec        logframe.Codec
	first, last  uint64
	count        int
	rawLen       int
	crc          uint32
	payloadBytes int
}

type decodedFrame struct {
	id   frameID
	recs *frameRecords
}

func idOf(h *frameHeader) frameID {
	return frameID{h.version, h.codec, h.first, h.last, h.count, h.rawLen, h.crc, len(h.crcFrom)}
}

// records returns f's records, decoding them unless a cached decode of the
// same frame exists. They are shared: read-only.
func (c *decodedCache) records(f *storedFrame) (*frameRecords, error) {
	if f.err != nil {
		return nil, f.err
	}
	id := idOf(&f.h)
	c.mu.Lock()
	for i := range c.slots {
		if c.slots[i].recs != nil && c.slots[i].id == id {
			recs := c.slots[i].recs
			c.mu.Unlock()
			return recs, nil
		}
	}
	c.mu.Unlock()
	recs, err := decodeFrameRecords(&f.h)
	if err != nil || f.h.rawLen > decodedMaxRaw {
		return recs, err
	}
	c.mu.Lock()
	c.slots[c.next] = decodedFrame{id, recs}
	c.next = (c.next + 1) % decodedSlots
	c.mu.Unlock()
	return recs, nil
}
