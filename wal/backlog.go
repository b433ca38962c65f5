package wal

import (
	"context"
	"sort"
)

// Backlog returns how many records routed to target lie between sequences
// from and through, both included, and true. It adds up the per-target
// tallies the index keeps for every frame inside the range and reads only
// the frames the range cuts (the one holding a cursor, say), so counting a
// million pending records costs microseconds, not a decompression of each
// frame. It returns false when a frame in the range is damaged (its
// tallies are unknown) or a cut frame cannot be read: Read tells then. It
// satisfies delivery.BacklogCounter.
//
// The count is exact while no cursor of target passes from: frames a
// cursor has not passed are neither reclaimed nor compacted.
func (l *Log) Backlog(target string, from, through uint64) (int64, bool) {
	if from > through {
		return 0, true
	}
	type span struct{ first, last uint64 }
	var n int64
	var cut []span
	l.ix.mu.Lock()
	fs := l.ix.frames
	i := sort.Search(len(fs), func(i int) bool { return fs[i].last >= from })
	for ; i < len(fs) && fs[i].first <= through; i++ {
		m := fs[i]
		switch {
		case m.gone:
			continue
		case m.damage != "":
			l.ix.mu.Unlock()
			return 0, false
		case m.first < from || m.last > through:
			cut = append(cut, span{max(m.first, from), min(m.last, through)})
			continue
		}
		for _, t := range m.targets {
			if t.target == target {
				n += t.n
				break
			}
		}
	}
	l.ix.mu.Unlock()
	for _, s := range cut {
		_, err := l.Read(context.Background(), s.first, target, func(r Record) bool {
			if r.Seq > s.last {
				return false
			}
			n++
			return true
		})
		if err != nil {
			return 0, false
		}
	}
	return n, true
}
