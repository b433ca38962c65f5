package delivery

import (
	"context"
	"strings"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// itemOverhead approximates what one item held in a window costs besides
// its key, name and data: the Item itself and, in a coalescing window, its
// key's map entry. It makes WindowBytes bound windows of tiny records too.
const itemOverhead = 128

// recordSize is what r costs a window once it is an item.
func recordSize(r *wal.Record) int64 {
	return int64(len(r.Key)+len(r.Name)+len(r.Data)) + itemOverhead
}

func itemSize(it *Item) int64 {
	return int64(len(it.Key)+len(it.EventName)+len(it.Record)) + itemOverhead
}

// newItem turns r into an item sharing r's data: the Log contract lets a
// reader keep it (never reused, and never pinning much more than the
// records read), so a batch window costs no copy per record.
func newItem(r *wal.Record) Item {
	return Item{
		Seq: r.Seq, Key: r.Key, EventName: event.Name(r.Name), EventTime: r.EventTime, AppendTime: r.AppendTime,
		Record: r.Data,
	}
}

// item is newItem, naming the log the record came from.
func (l *loop) item(r *wal.Record) Item {
	it := newItem(r)
	it.LogID = l.e.logID
	return it
}

// ownItem is item with its own copy of the key and data, for a coalescing
// window: it keeps one record of many, and a superseded record's data must
// not stay alive through the frame its survivor shares (wal's records of a
// frame share their data's buffer, and their keys' string).
func (l *loop) ownItem(r *wal.Record) Item {
	it := l.item(r)
	it.Key = strings.Clone(r.Key)
	it.Record = append(make([]byte, 0, len(r.Data)), r.Data...)
	return it
}

// window is one read of the log: the items to send, how many of the
// target's records they cover (coalesced and dropped ones included), where
// the next read starts, the append signal taken before reading, and the
// read's error.
type window struct {
	items []Item
	n     int
	next  uint64
	wake  <-chan struct{}
	err   error
}

// readAt reads the window starting at from.
func (l *loop) readAt(ctx context.Context, from uint64) window {
	w := window{wake: l.e.log.Appended()} // taken before reading, so no append is missed
	if l.spec.Namespace {
		w.items, w.n, w.next, w.err = l.readCoalesced(ctx, from)
	} else {
		w.items, w.n, w.next, w.err = l.readBatch(ctx, from)
	}
	return w
}

// readBatch reads up to windowItems records and WindowBytes bytes (at least
// one record) from from on.
func (l *loop) readBatch(ctx context.Context, from uint64) ([]Item, int, uint64, error) {
	limit, most := l.e.opts.WindowBytes, l.windowItems()
	items := make([]Item, 0, l.windowCap(from, most))
	var size int64
	cut, stop := false, uint64(0) // the record that did not fit
	logID := l.e.logID
	next, err := l.e.log.Read(ctx, from, l.spec.ID, func(r wal.Record) bool {
		sz := recordSize(&r)
		if len(items) > 0 && size+sz > limit {
			cut, stop = true, r.Seq
			return false
		}
		items = append(items, newItem(&r))
		items[len(items)-1].LogID = logID
		size += sz
		return len(items) < most
	})
	if err != nil {
		return nil, 0, from, err
	}
	if cut {
		next = stop
	}
	return items, len(items), next, nil
}

// windowCap is the capacity a window read from from starts with: as many
// items as it may hold (most, and no more than WindowBytes of the smallest
// items), but no more than the records committed from from on, so that a
// loop keeping up with appends does not allocate a full window for the few
// records each read finds. Sized up front, a window of thousands of items
// is built without growing (and copying) its slice a dozen times.
func (l *loop) windowCap(from uint64, most int) int {
	_, last := l.e.log.Routed(l.spec.ID)
	if last < from {
		return 0
	}
	n := min(most, int(min(l.e.opts.WindowBytes/itemOverhead, 1<<20)))
	return int(min(uint64(n), last-from+1))
}

// readCoalesced reads a namespace target's coalescing window from from on:
// the newest item of each key, in log order, over up to CoalesceEvents
// records, CoalesceKeys keys and WindowBytes bytes of kept items (at least
// one). Items that change nothing (reads) are dropped, and a superseded
// item's data is let go as soon as its key's next event is read.
func (l *loop) readCoalesced(ctx context.Context, from uint64) ([]Item, int, uint64, error) {
	o := &l.e.opts
	var items []Item // log order; superseded ones are zero (Seq 0) until compacted
	byKey := map[string]int{}
	holes, n := 0, 0
	var size int64
	cut, stop := false, uint64(0)
	next, err := l.e.log.Read(ctx, from, l.spec.ID, func(r wal.Record) bool {
		if event.Name(r.Name).Op() == event.OpNone {
			n++ // nothing to write: delivered by definition
			return n < o.CoalesceEvents
		}
		sz := recordSize(&r)
		i, seen := byKey[r.Key]
		others, old := len(byKey), int64(0)
		if seen {
			others--
			old = itemSize(&items[i])
		}
		if !seen && len(byKey) >= o.CoalesceKeys || others > 0 && size-old+sz > o.WindowBytes {
			cut, stop = true, r.Seq
			return false
		}
		if seen {
			items[i] = Item{} // superseded: its data goes now
			holes++
			size -= old
		}
		byKey[r.Key] = len(items)
		items = append(items, l.ownItem(&r))
		size += sz
		n++
		if holes > 1024 && holes > len(items)/2 {
			items, holes = compact(items, byKey), 0
		}
		return n < o.CoalesceEvents
	})
	if err != nil {
		return nil, 0, from, err
	}
	if cut {
		next = stop
	}
	if holes > 0 {
		items = compact(items, byKey)
	}
	return items, n, next, nil
}

// compact removes superseded items, keeping the order, and updates byKey.
func compact(items []Item, byKey map[string]int) []Item {
	kept := items[:0]
	for _, it := range items {
		if it.Seq != 0 {
			byKey[it.Key] = len(kept)
			kept = append(kept, it)
		}
	}
	clear(items[len(kept):]) // the tail still refers to moved items' data
	return kept
}
