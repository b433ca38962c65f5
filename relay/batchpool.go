package relay

import (
	"sync"
	"time"
	"unsafe"

	"github.com/bucketrelay/bucketrelay/wal"
)

// Publish, PublishJSON and POST /v1/events reuse their batches: the
// encoded records, the entries and the keys of one call are written over by
// a later call once the log has them. This relies on relayLog.Append
// keeping nothing of the entries once it returns (both logs encode them
// into a frame first) and on watchers copying what they keep (publishLive).

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// Batches that grew beyond these sizes are dropped rather than pooled, so
// one huge call does not pin its memory for good.
const (
	poolMaxBuf     = 4 << 20
	poolMaxEntries = 16384
)

func (r *Relay) newBatch(n int) *batch {
	b := batchPool.Get().(*batch)
	if b.onJSON == nil {
		b.onJSON = b.addJSON // a method value allocates: once per batch
	}
	b.r, b.start, b.watch, b.set = r, time.Now(), r.watching(), r.tgt.set.Load()
	if cap(b.slab) < n {
		b.slab = make([]wal.Entry, 0, n)
	}
	return b
}

// seal makes the entries once every record is added: the keys become one
// string, each entry's key a slice of it, and entries points into slab
// (which no longer grows).
func (b *batch) seal() {
	// The keys are a string over b.keys, not a copy: the log encodes the
	// entries before Append returns, and b.keys is written over only by
	// the batch's next call.
	keys := unsafe.String(unsafe.SliceData(b.keys), len(b.keys))
	start := 0
	b.entries = b.entries[:0]
	for i := range b.slab {
		e := &b.slab[i]
		e.Key = keys[start:b.keyEnd[i]]
		start = b.keyEnd[i]
		b.entries = append(b.entries, e)
	}
}

// release returns b to the pool, cleared of what the call referenced.
func (b *batch) release() {
	if cap(b.buf) > poolMaxBuf || cap(b.slab) > poolMaxEntries {
		return
	}
	clear(b.slab)
	clear(b.entries)
	clear(b.live)
	*b = batch{
		entries: b.entries[:0], slab: b.slab[:0], keys: b.keys[:0], keyEnd: b.keyEnd[:0],
		buf: b.buf[:0], scratch: b.scratch[:0], match: b.match[:0], live: b.live[:0],
		onJSON: b.onJSON,
	}
	batchPool.Put(b)
}
