package jslog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/wal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Read calls fn for each record from sequence from on that is routed to
// target (every record if target is ""; only the lane's records if target
// is a LaneID), in order, until fn returns false,
// the records the log has seen end or ctx ends. It returns the sequence the
// next Read should start at. Messages not routed to target are skipped
// without being fetched. A damaged message returns an error wrapping
// wal.ErrCorrupt. A fetch the stream does not answer (no leader, no
// quorum, a server behind) is retried until ctx ends: the message is
// stored, and an error would stop the caller's delivery for good. Each
// record passed has its own copy of the data, which fn may keep (the
// delivery.Log contract).
func (l *Log) Read(ctx context.Context, from uint64, target string, fn func(wal.Record) bool) (uint64, error) {
	s, idx := SplitSeq(from)
	next := from
	base, lane, lanes := parseLane(target)
	failures := 0 // consecutive failed fetches of one message
	for {
		if err := ctx.Err(); err != nil {
			return next, err
		}
		m, ok := l.metaAt(s)
		if !ok {
			return next, nil
		}
		if m.seq > s {
			s, idx = m.seq, 0
			next = Seq(s, 0)
		}
		if m.count == 0 || (target != "" && !l.routes(m, base)) || idx >= int(m.count) {
			s, idx = m.seq+1, 0
			next = Seq(s, 0)
			continue
		}
		f, err := l.frameAt(ctx, m.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if l.purged(ctx, m.seq) {
				// Reclaimed by some process since the index saw it:
				// every target it is routed to has passed it.
				l.dropBelow(m.seq + 1)
				s, idx = m.seq+1, 0
				next = Seq(s, 0)
				continue
			}
			// Not found, yet not reclaimed: a server answered before it
			// applied the message. Never skip it: ask again below.
			err = fmt.Errorf("jslog: stream message %d not found but not reclaimed either: %w", m.seq, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return next, ctx.Err()
			}
			if errors.Is(err, wal.ErrCorrupt) || errors.Is(err, nats.ErrConnectionClosed) || l.isClosed() {
				return next, err
			}
			// No leader, no quorum, a server behind or reconnecting: the
			// message is stored, so wait and read it again. Returning the
			// error would stop the caller's delivery for good (the
			// contract: an error means the log cannot be read at all).
			if failures == 0 {
				l.lg.Warn("jslog: reading the stream failed; retrying until it answers", "target", target, "streamSeq", m.seq, "err", err)
			}
			failures++
			select {
			case <-ctx.Done():
				return next, ctx.Err()
			case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
			}
			continue
		}
		if failures > 0 {
			l.lg.Info("jslog: reading the stream works again", "target", target, "streamSeq", m.seq, "failures", failures)
			failures = 0
		}
		if f.count != int(m.count) {
			return next, &corruptError{Seq(m.seq, 0), fmt.Sprintf("headers say %d records, the body holds %d", m.count, f.count)}
		}
		stop := false
		var want func([]string, string) bool
		if target != "" {
			want = func(targets []string, key string) bool {
				return contains(targets, base) && (lanes <= 1 || LaneOf(key, lanes) == lane)
			}
		}
		err = f.records(idx, want, func(r wal.Record) bool {
			next = r.Seq + 1
			if !fn(r) {
				stop = true
				return false
			}
			return true
		})
		if err != nil {
			return next, err
		}
		if _, i := SplitSeq(next); i >= f.count || !stop {
			next = Seq(m.seq+1, 0)
		}
		if stop {
			return next, nil
		}
		s, idx = m.seq+1, 0
		next = Seq(s, 0)
	}
}

// isClosed reports whether Close was called.
func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// purged reports whether the stream's first sequence has passed s: the
// log only ever removes messages by purging a prefix.
func (l *Log) purged(ctx context.Context, s uint64) bool {
	info, err := l.stream.Info(ctx)
	return err == nil && info.State.FirstSeq > s
}

// metaAt returns the first indexed message at or after stream sequence s.
func (l *Log) metaAt(s uint64) (meta, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.index), func(i int) bool { return l.index[i].seq >= s })
	if i == len(l.index) {
		return meta{}, false
	}
	return l.index[i], true
}

func (l *Log) routes(m meta, target string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.sets[m.set]
	i := sort.SearchStrings(set, target)
	return i < len(set) && set[i] == target
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// frameAt returns the decoded message at stream sequence s, from the cache
// or the stream (its leader). Concurrent reads of one message fetch it once.
func (l *Log) frameAt(ctx context.Context, s uint64) (*frame, error) {
	f, wait, leader := l.cache.get(s)
	if f != nil {
		return f, nil
	}
	if !leader {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f, _, _ := l.cache.peek(s); f != nil {
			return f, nil
		}
		// The fetcher failed; fetch ourselves.
	}
	msg, err := l.stream.GetMsg(ctx, s)
	for try := 0; try < 5 && errors.Is(err, jetstream.ErrMsgNotFound) && !l.purged(ctx, s); try++ {
		// Indexed, so stored: the answering server is behind; ask again.
		l.lg.Debug("jslog: indexed message not found yet; asking again", "streamSeq", s)
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
		msg, err = l.stream.GetMsg(ctx, s)
	}
	if err != nil {
		l.cache.fail(s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("jslog: reading stream message %d: %w", s, err)
	}
	f, err = decodeFrame(s, msg.Data)
	if err != nil {
		l.cache.fail(s)
		return nil, err
	}
	l.cache.put(s, f)
	return f, nil
}

// frameCache keeps recently read messages, decoded, within a byte budget;
// the oldest inserted goes first.
type frameCache struct {
	mu       sync.Mutex
	max      int64
	bytes    int64
	frames   map[uint64]*frame
	order    []uint64
	inflight map[uint64]chan struct{}
}

func (c *frameCache) init(max int64) {
	c.max = max
	c.frames = map[uint64]*frame{}
	c.inflight = map[uint64]chan struct{}{}
}

// get returns the cached frame, or a channel to wait on while another
// reader fetches it, or leader = true: the caller fetches, then calls put
// or fail.
func (c *frameCache) get(s uint64) (f *frame, wait chan struct{}, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.frames[s]; f != nil {
		return f, nil, false
	}
	if ch, ok := c.inflight[s]; ok {
		return nil, ch, false
	}
	c.inflight[s] = make(chan struct{})
	return nil, nil, true
}

func (c *frameCache) peek(s uint64) (*frame, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames[s], false, false
}

func (c *frameCache) done(s uint64) {
	if ch, ok := c.inflight[s]; ok {
		close(ch)
		delete(c.inflight, s)
	}
}

func (c *frameCache) fail(s uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done(s)
}

func (c *frameCache) put(s uint64, f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done(s)
	if _, ok := c.frames[s]; ok {
		return
	}
	c.frames[s] = f
	c.order = append(c.order, s)
	c.bytes += int64(f.size())
	for c.bytes > c.max && len(c.order) > 1 {
		old := c.order[0]
		c.order = c.order[1:]
		if of := c.frames[old]; of != nil {
			c.bytes -= int64(of.size())
			delete(c.frames, old)
		}
	}
}

// dropBelow forgets frames before stream sequence s. Called with the log's
// mu held; takes only the cache's own lock.
func (c *frameCache) dropBelow(s uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.order[:0]
	for _, seq := range c.order {
		if seq < s {
			if f := c.frames[seq]; f != nil {
				c.bytes -= int64(f.size())
				delete(c.frames, seq)
			}
			continue
		}
		kept = append(kept, seq)
	}
	c.order = kept
}
