package wal

import (
	"context"
	"fmt"
	"time"
)

// Limit bounds what one target may have pending: records routed to it
// that its cursor has not passed, counted by whole frames (a record counts
// until the cursor passed every record of its frame), plus records being
// appended.
type Limit struct {
	// MaxEvents bounds the pending records; 0 means the log's default
	// (Options.MaxEvents).
	MaxEvents int64
	// MaxBytes bounds the pending record bytes; 0 means the log's default
	// (Options.MaxBytes).
	MaxBytes int64
	// Drop, when set, removes the target from entries that do not fit
	// (the records are still logged for their other targets) instead of
	// making Append wait: false (block) by default.
	Drop bool
}

// dropRepeat is how often drops of one target are logged at most.
const dropRepeat = 10 * time.Second

// dropNote is what has been dropped for a target since it was last
// logged.
type dropNote struct {
	n      uint64
	logged time.Time
}

// SetLimit sets target's bound and policy, replacing the default.
func (l *Log) SetLimit(target string, lim Limit) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	l.ix.limits[target] = lim
	l.ix.wake()
}

// limit returns target's bound. Called with the index's mu held.
func (ix *index) limit(target string) Limit {
	lim, ok := ix.limits[target]
	if !ok {
		return ix.def
	}
	if lim.MaxEvents <= 0 {
		lim.MaxEvents = ix.def.MaxEvents
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = ix.def.MaxBytes
	}
	return lim
}

// Pending returns the records and record bytes routed to target that its
// cursor has not passed (by whole frames) plus those being appended: what
// its bound limits.
func (l *Log) Pending(target string) (events, bytes int64) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if u := l.ix.pend[target]; u != nil {
		return u.n, u.bytes
	}
	return 0, 0
}

// Dropped returns how many records were not routed to target since Open
// because its bound was reached and its policy is to drop.
func (l *Log) Dropped(target string) uint64 {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.dropped[target]
}

// reserve waits until entries fit in the bound of every target they are
// routed to, and reserves the room. Targets whose policy is to drop are
// removed from the entries that do not fit: the entries returned are then
// copies. It returns the per-target reservation and the entries' size.
func (l *Log) reserve(ctx context.Context, entries []*Entry) ([]*Entry, map[string]usage, int64, error) {
	ix := &l.ix
	for {
		need := map[string]usage{}
		var size int64
		for _, e := range entries {
			sz := e.size()
			size += sz
			for _, t := range e.Targets {
				u := need[t]
				u.add(1, sz)
				need[t] = u
			}
		}
		ix.mu.Lock()
		if err := ix.writable(); err != nil {
			ix.mu.Unlock()
			return nil, nil, 0, err
		}
		blocked, drop := "", map[string]usage{}
		for t, u := range need {
			lim := ix.limit(t)
			p := ix.use(t)
			if p.n+u.n <= lim.MaxEvents && p.bytes+u.bytes <= lim.MaxBytes {
				// Retained history counts against the bound too, but
				// makes room, oldest first, rather than hold this back.
				ix.evictFor(t, *p, u, lim)
				continue
			}
			if lim.Drop {
				drop[t] = usage{lim.MaxEvents - p.n, lim.MaxBytes - p.bytes} // room left
				continue
			}
			if u.n > lim.MaxEvents || u.bytes > lim.MaxBytes {
				ix.mu.Unlock()
				return nil, nil, 0, fmt.Errorf("%w: %d events, %d bytes routed to %s, whose bound is %d events, %d bytes", ErrTooLarge, u.n, u.bytes, t, lim.MaxEvents, lim.MaxBytes)
			}
			blocked = t
		}
		if len(drop) > 0 {
			entries = l.dropEntries(entries, drop)
			ix.mu.Unlock()
			continue // measure again without the dropped routes
		}
		if blocked == "" {
			for t, u := range need {
				ix.use(t).add(u.n, u.bytes)
			}
			ix.events += int64(len(entries))
			ix.bytes += size
			ix.mu.Unlock()
			return entries, need, size, nil
		}
		p, lim := *ix.use(blocked), ix.limit(blocked)
		freed := ix.freed
		ix.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, nil, 0, fmt.Errorf("%w: target %s has %d events, %d bytes pending (bound %d events, %d bytes): %w",
				ErrFull, blocked, p.n, p.bytes, lim.MaxEvents, lim.MaxBytes, ctx.Err())
		}
	}
}

// dropEntries returns entries with each target of drop removed from the
// entries beyond the room it has left, in order, counting the drops.
// Called with the index's mu held.
func (l *Log) dropEntries(entries []*Entry, drop map[string]usage) []*Entry {
	out := make([]*Entry, len(entries))
	for i, e := range entries {
		sz := e.size()
		var keep []string
		cut := false
		for _, t := range e.Targets {
			room, ok := drop[t]
			if !ok {
				keep = append(keep, t)
				continue
			}
			if room.n >= 1 && room.bytes >= sz {
				room.add(-1, -sz)
				drop[t] = room
				keep = append(keep, t)
				continue
			}
			cut = true
			l.ix.dropped[t]++
			dn := l.ix.drops[t]
			if dn == nil {
				dn = &dropNote{}
				l.ix.drops[t] = dn
			}
			dn.n++
		}
		if !cut {
			out[i] = e
			continue
		}
		c := *e
		c.Targets = keep
		out[i] = &c
	}
	l.logDropsLocked(false)
	return out
}

// logDrops logs what was dropped per target since it was last logged: at
// once for a target's first drop, then at most every dropRepeat, and
// everything at Close (final).
func (l *Log) logDrops(final bool) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	l.logDropsLocked(final)
}

func (l *Log) logDropsLocked(final bool) {
	now := time.Now()
	for t, dn := range l.ix.drops {
		if dn.n == 0 || (!final && now.Sub(dn.logged) < dropRepeat) {
			continue
		}
		lim := l.ix.limit(t)
		l.log.Warn("wal: target's bound reached; records routed to it are dropped (whenFull: drop)",
			"target", t, "dropped", dn.n, "droppedTotal", l.ix.dropped[t], "maxEvents", lim.MaxEvents, "maxBytes", lim.MaxBytes)
		dn.n = 0
		dn.logged = now
	}
}
