package wal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	bolt "go.etcd.io/bbolt"
)

// Compaction budget of one commit, so that commit latency stays low: at
// most this many frames, and this many record bytes, are rewritten per
// write transaction.
const (
	compactFrames = 8
	compactBytes  = 8 << 20
)

// Merging: compaction leaves a dead target's records in many small frames
// (one per group commit), each costing memory in the index. A run of at
// least mergeMin consecutive settled frames smaller than mergeSmall is
// rewritten as one frame of at most mergeMax bytes.
const (
	mergeMin   = 8
	mergeSmall = 256 << 10
	mergeMax   = 1 << 20
)

// committer turns appends into durable frames. Append queues a request;
// batch numbers the queued requests and encodes them as one frame while
// the previous transaction syncs; commit writes every frame ready, the
// cursor moves and quarantine entries, deletes what every target passed
// and compacts a bounded number of frames pinned by lagging targets, in one
// bbolt write transaction (group commit).
type committer struct {
	reqs    chan *appendReq
	frames  chan []*pendingFrame // the frames of one batch: one transaction
	closing chan struct{}
	wg      sync.WaitGroup
	// sendMu is held for reading while an append is queued; Close takes it
	// for writing, so no append is between its check and its send.
	sendMu sync.RWMutex
	// txMu serializes write transactions (the committer's and Release's)
	// and the index changes that follow them: the frame list and durable
	// cursors change only under it. Taken before the index's mu.
	txMu sync.Mutex
}

type appendReq struct {
	entries []*Entry
	bytes   int64
	res     map[string]usage // per-target reservation
	first   uint64
	done    chan error
}

type pendingFrame struct {
	meta  *frameMeta
	value []byte // set once ready is closed
	reqs  []*appendReq
	recs  []frameRecord // what encode compresses
	ready chan struct{}
}

// Append logs entries and returns the sequence of the first one once they
// are durable. Entries are numbered consecutively in the order given.
//
// Each target an entry is routed to has a bound (SetLimit, or the
// Options' MaxEvents and MaxBytes). When the entries do not fit in a
// target's bound, Append waits for room until ctx ends and then fails with
// an error wrapping ErrFull that names the target; a target whose policy
// is to drop is removed from the entries that do not fit instead (counted
// by Dropped, logged). Entries routed only to other targets never wait for
// a full one.
func (l *Log) Append(ctx context.Context, entries ...*Entry) (uint64, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	if len(entries) == 0 {
		return 0, nil
	}
	entries, res, size, err := l.reserve(ctx, entries)
	if err != nil {
		return 0, err
	}
	r := &appendReq{entries: entries, bytes: size, res: res, done: make(chan error, 1)}
	l.c.sendMu.RLock()
	l.ix.mu.Lock()
	err = l.ix.writable()
	l.ix.mu.Unlock()
	if err != nil {
		l.c.sendMu.RUnlock()
		l.unreserve(r)
		return 0, err
	}
	l.c.reqs <- r
	l.c.sendMu.RUnlock()
	// Once queued the records will be committed; wait for it even if ctx
	// ends, so that an error never hides a record that became durable.
	if err := <-r.done; err != nil {
		return 0, err
	}
	return r.first, nil
}

// unreserve gives back what a failed append reserved.
func (l *Log) unreserve(r *appendReq) {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	for t, u := range r.res {
		l.ix.use(t).add(-u.n, -u.bytes)
	}
	l.ix.events -= int64(len(r.entries))
	l.ix.bytes -= r.bytes
	l.ix.wake()
}

// batch gathers queued appends into frames: the first half of the group
// commit pipeline. It numbers the next batch while the previous frames are
// compressed (see cut) and the committer syncs them.
func (l *Log) batch() {
	defer l.c.wg.Done()
	defer close(l.c.frames)
	for {
		var r *appendReq
		select {
		case r = <-l.c.reqs:
		case <-l.c.closing:
			// Close stops new sends first, so what is queued now is all.
			select {
			case r = <-l.c.reqs:
			default:
				return
			}
		}
		reqs := []*appendReq{r}
		size := r.bytes
	gather:
		for size < maxFrameBytes {
			select {
			case r = <-l.c.reqs:
				reqs = append(reqs, r)
				size += r.bytes
			default:
				break gather
			}
		}
		// A batch's frames go together, so that they share one fsync.
		l.c.frames <- l.cut(reqs)
	}
}

// Frames are cut from a batch at request boundaries once they hold this
// many bytes, so that a large group commit is compressed by several
// goroutines at once; a batch smaller than encodeInline is encoded by the
// batcher itself, sparing a lone appender a goroutine switch.
const (
	frameChunk   = 512 << 10
	encodeInline = 64 << 10
)

// cut numbers the requests of one batch and cuts them into frames, in
// sequence order. Each frame is compressed off the batcher's goroutine
// (ready is closed once value is set), so the batcher goes on gathering
// while the previous frames are encoded and synced.
func (l *Log) cut(reqs []*appendReq) []*pendingFrame {
	var total int64
	for _, r := range reqs {
		total += r.bytes
	}
	now := time.Now().UnixNano()
	var out []*pendingFrame
	l.ix.mu.Lock()
	for len(reqs) > 0 {
		k, size, n := 0, int64(0), 0
		for k < len(reqs) && (k == 0 || size < frameChunk) {
			size += reqs[k].bytes
			n += len(reqs[k].entries)
			k++
		}
		part := reqs[:k:k]
		reqs = reqs[k:]
		recs := make([]frameRecord, 0, n)
		first := l.ix.nextSeq
		for _, r := range part {
			r.first = l.ix.nextSeq
			for _, e := range r.entries {
				recs = append(recs, frameRecord{seq: l.ix.nextSeq, at: now, e: e})
				l.ix.nextSeq++
			}
		}
		m := &frameMeta{first: first, last: l.ix.nextSeq - 1, count: int64(n), bytes: size, at: now}
		for _, r := range part {
			for t, u := range r.res {
				m.targets = addTally(m.targets, t, u)
			}
		}
		out = append(out, &pendingFrame{meta: m, reqs: part, recs: recs, ready: make(chan struct{})})
	}
	l.ix.mu.Unlock()
	for _, f := range out {
		if total < encodeInline {
			f.encode(l.codec)
		} else {
			go f.encode(l.codec)
		}
	}
	return out
}

// encode compresses the frame's records into its value.
func (f *pendingFrame) encode(codec logframe.Codec) {
	f.value = encodeFrame(codec, f.meta.first, f.meta.last, f.recs)
	f.recs = nil
	close(f.ready)
}

func addTally(ts []tally, t string, u usage) []tally {
	for i := range ts {
		if ts[i].target == t {
			ts[i].n += u.n
			ts[i].bytes += u.bytes
			return ts
		}
	}
	return append(ts, tally{target: t, n: u.n, bytes: u.bytes})
}

// commit writes frames, cursor moves and quarantine entries, one bbolt
// transaction at a time.
func (l *Log) commit() {
	defer l.c.wg.Done()
	tick := time.NewTicker(l.opts.CursorSyncInterval)
	defer tick.Stop()
	for {
		var frames []*pendingFrame
		select {
		case fs, ok := <-l.c.frames:
			if !ok {
				l.writeTx(nil) // final cursors
				return
			}
			frames = append(frames, fs...)
		gather:
			for {
				select {
				case fs, ok := <-l.c.frames:
					if !ok {
						break gather
					}
					frames = append(frames, fs...)
				default:
					break gather
				}
			}
		case <-tick.C:
		}
		l.writeTx(frames)
	}
}

// txPlan is what one write transaction does besides storing new frames,
// decided from the index before it starts.
type txPlan struct {
	moves   map[string]uint64 // cursor moves to commit
	quar    []QuarantineEntry
	view    cursorView
	reclaim []*frameMeta           // stored frames every target passed
	skip    map[*pendingFrame]bool // new frames every target passed already
	compact []*frameMeta
	merge   [][]*frameMeta         // runs of settled frames to merge into their first
	rewrote map[*frameMeta]rewrite // compaction and merge results, filled in the transaction
}

// rewrite is a frame compacted in place: nil value deletes it.
type rewrite struct {
	value   []byte
	targets []tally
	count   int64
	bytes   int64
	last    uint64
	merged  int // frames merged into it besides itself
	damage  string
}

// plan decides a transaction. Called with the index's mu held.
func (l *Log) plan(frames []*pendingFrame) *txPlan {
	ix := &l.ix
	p := &txPlan{moves: ix.dirty, quar: ix.quar, skip: map[*pendingFrame]bool{}, rewrote: map[*frameMeta]rewrite{}}
	ix.dirty = map[string]uint64{}
	ix.quar = nil
	p.view = cursorView{durable: ix.durable, moves: p.moves}
	// Only frames a committed cursor passes now can become reclaimable.
	// Any of them, not only the oldest: a target that lags pins its own
	// frames, never the others'.
	seen := map[*frameMeta]bool{}
	reclaimed := map[*frameMeta]bool{}
	for t, c := range p.moves {
		for _, m := range ix.crossing(ix.durable[t], c) {
			if seen[m] {
				continue
			}
			seen[m] = true
			if p.view.passed(m) {
				p.reclaim = append(p.reclaim, m)
				reclaimed[m] = true
			} else if p.view.worthCompacting(m) {
				ix.compactQ = append(ix.compactQ, m)
			}
		}
	}
	for _, f := range frames {
		if p.view.passed(f.meta) {
			p.skip[f] = true
		}
	}
	var budget int64
	busy := map[*frameMeta]bool{}
	for len(ix.compactQ) > 0 && len(p.compact) < compactFrames && budget < compactBytes {
		m := ix.compactQ[0]
		ix.compactQ = ix.compactQ[1:]
		if !busy[m] && !reclaimed[m] && !m.gone && p.view.worthCompacting(m) {
			p.compact = append(p.compact, m)
			busy[m] = true
			budget += m.bytes
		}
	}
	if len(ix.compactQ) == 0 {
		ix.compactQ = nil
	}
	for m := range reclaimed {
		busy[m] = true
	}
	for _, m := range ix.mergeQ {
		if budget >= compactBytes {
			break // the next compaction looks back again
		}
		if run := ix.mergeRun(m, p.view, busy); run != nil {
			p.merge = append(p.merge, run)
			for _, f := range run {
				budget += f.bytes
			}
		}
	}
	ix.mergeQ = nil
	l.retain(p, frames) // retention.go
	return p
}

// mergeRun returns the run of settled small frames ending at m, oldest
// first, if it is long enough to merge, and marks its frames busy.
func (ix *index) mergeRun(m *frameMeta, view cursorView, busy map[*frameMeta]bool) []*frameMeta {
	i := ix.index(m)
	var run []*frameMeta
	var total int64
	for j := i; j >= 0; j-- {
		f := ix.frames[j]
		if busy[f] || !view.settled(f) || f.bytes >= mergeSmall || total+f.bytes > mergeMax {
			break
		}
		run = append(run, f)
		total += f.bytes
	}
	if len(run) < mergeMin {
		return nil
	}
	for k := 0; k < len(run)/2; k++ {
		run[k], run[len(run)-1-k] = run[len(run)-1-k], run[k]
	}
	for _, f := range run {
		busy[f] = true
	}
	return run
}

func (l *Log) writeTx(frames []*pendingFrame) {
	for _, f := range frames {
		<-f.ready
	}
	l.c.txMu.Lock()
	defer l.c.txMu.Unlock()
	ix := &l.ix
	ix.mu.Lock()
	if err := ix.failErr; err != nil {
		// Fail-stop: frames queued before the failure are refused too. A
		// later fsync may succeed while pages an earlier one could not
		// write were dropped; nothing is acknowledged after a failure.
		ix.mu.Unlock()
		l.refuse(frames, err)
		return
	}
	if len(frames) == 0 && len(ix.dirty) == 0 && len(ix.quar) == 0 && len(ix.compactQ) == 0 && len(ix.mergeQ) == 0 && !l.sweepDue() {
		ix.mu.Unlock()
		return
	}
	p := l.plan(frames)
	ix.mu.Unlock()
	if len(frames) == 0 && len(p.moves) == 0 && len(p.quar) == 0 && len(p.compact) == 0 && len(p.merge) == 0 && len(p.reclaim) == 0 {
		return // the queues held nothing worth a transaction
	}

	err := l.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for _, f := range frames {
			if p.skip[f] {
				continue
			}
			if err := rb.Put(seqKey(f.meta.first), f.value); err != nil {
				return err
			}
		}
		if n := len(frames); n > 0 {
			next := frames[n-1].meta.last + 1
			if err := tx.Bucket(bucketMeta).Put(keyNextSeq, seqKey(next)); err != nil {
				return err
			}
		}
		if err := putQuarantine(tx, p.quar); err != nil {
			return err
		}
		cb := tx.Bucket(bucketCursors)
		for t, c := range p.moves {
			if err := cb.Put([]byte(t), seqKey(c)); err != nil {
				return err
			}
		}
		// Reclaim only what the cursors committed by this transaction
		// allow, so a crash never leaves a cursor behind a deleted frame.
		for _, m := range p.reclaim {
			if err := rb.Delete(seqKey(m.first)); err != nil {
				return err
			}
		}
		for _, m := range p.compact {
			rw, err := compactFrame(rb, l.codec, []*frameMeta{m}, p.view)
			if err != nil {
				return err
			}
			p.rewrote[m] = rw
		}
		for _, run := range p.merge {
			rw, err := compactFrame(rb, l.codec, run, p.view)
			if err != nil {
				return err
			}
			if rw.damage != "" {
				continue // left as they are; met again by a read
			}
			p.rewrote[run[0]] = rw
			for _, m := range run[1:] {
				p.rewrote[m] = rewrite{} // deleted: merged into run[0]
			}
		}
		return nil
	})
	if err != nil {
		l.failTx(p, frames, err)
		return
	}

	var damaged []damagedFrame
	ix.mu.Lock()
	for t, c := range p.moves {
		ix.durable[t] = c
	}
	for _, m := range p.reclaim {
		m.gone = true
	}
	for m, rw := range p.rewrote {
		switch {
		case rw.damage != "":
			damaged = append(damaged, damagedFrame{first: m.first, last: m.last, reason: rw.damage, targets: m.targets, known: m.targets != nil})
		case rw.value == nil:
			ix.setTallies(m, nil, 0, 0, m.last)
			m.gone = true
		default:
			ix.setTallies(m, rw.targets, rw.count, rw.bytes, rw.last)
			if rw.merged == 0 {
				ix.mergeQ = append(ix.mergeQ, m)
			}
		}
	}
	if len(p.reclaim) > 0 || len(p.rewrote) > 0 {
		ix.removeGone()
	}
	for _, f := range frames {
		m := f.meta
		for _, t := range m.targets {
			ix.routed[t.target] += uint64(t.n)
			if !ix.counts(t.target, m) {
				ix.use(t.target).add(-t.n, -t.bytes)
			}
		}
		if p.skip[f] {
			ix.events -= m.count
			ix.bytes -= m.bytes
			continue
		}
		ix.frames = append(ix.frames, m)
	}
	if n := len(frames); n > 0 {
		l.lastSeq.Store(frames[n-1].meta.last)
		close(ix.appended)
		ix.appended = make(chan struct{})
	}
	ix.wake()
	ix.mu.Unlock()
	for _, f := range frames {
		for _, r := range f.reqs {
			r.done <- nil
		}
	}
	for _, d := range damaged {
		l.noteDamage(d)
	}
}

// failTx undoes a plan after its transaction failed: nothing of it is
// durable. Appenders fail; cursor moves, quarantine entries and compaction
// wait for the next try. A full disk is answered and retried; any other
// write or fsync error stops the log, since the kernel may have dropped
// pages it could not write and nothing read back can be trusted.
func (l *Log) failTx(p *txPlan, frames []*pendingFrame, err error) {
	if isNoSpace(err) {
		l.log.Warn("wal: commit failed: no space left on the device", "file", l.db.Path())
		err = ErrNoSpace
	} else {
		err = l.stop(err)
	}
	ix := &l.ix
	ix.mu.Lock()
	for t, c := range p.moves {
		if _, ok := ix.dirty[t]; !ok {
			ix.dirty[t] = c
		}
	}
	ix.quar = append(p.quar, ix.quar...)
	ix.compactQ = append(p.compact, ix.compactQ...)
	ix.mu.Unlock()
	l.refuse(frames, err)
}

// refuse fails the appends of frames with err: nothing of them is durable.
func (l *Log) refuse(frames []*pendingFrame, err error) {
	if !errors.Is(err, ErrNoSpace) && !errors.Is(err, ErrFailed) {
		err = fmt.Errorf("wal: commit: %w", err)
	}
	for _, f := range frames {
		for _, r := range f.reqs {
			l.unreserve(r)
			r.done <- err
		}
	}
}

// compactFrame rewrites the consecutive frames run as one frame under the
// first one's key, keeping only the records, and on each the targets, that
// a target has not passed per view; the others are deleted. Frames that
// turn out damaged are left as they are and reported.
func compactFrame(rb *bolt.Bucket, codec logframe.Codec, run []*frameMeta, view cursorView) (rewrite, error) {
	m := run[0]
	last := run[len(run)-1].last
	var recs []Record
	for _, f := range run {
		rs, err := loadFrame(rb, f.first)
		if err != nil {
			return rewrite{damage: reason(err)}, nil
		}
		recs = append(recs, rs...)
	}
	for _, f := range run[1:] {
		if err := rb.Delete(seqKey(f.first)); err != nil {
			return rewrite{}, err
		}
	}
	nv, nt := reencode(codec, m.first, last, recs, func(r *Record) []string {
		var keep []string
		for _, t := range r.Targets {
			if c, ok := view.get(t); !ok || c <= r.Seq {
				keep = append(keep, t)
			}
		}
		return keep
	})
	if nv == nil {
		return rewrite{}, rb.Delete(seqKey(m.first))
	}
	if err := rb.Put(seqKey(m.first), nv); err != nil {
		return rewrite{}, err
	}
	return rewrite{value: nv, targets: nt.targets, count: nt.count, bytes: nt.bytes, last: last, merged: len(run) - 1}, nil
}

// putQuarantine stores quarantine entries under their target and sequence.
func putQuarantine(tx *bolt.Tx, quar []QuarantineEntry) error {
	qb := tx.Bucket(bucketQuarantine)
	for _, q := range quar {
		b, err := qb.CreateBucketIfNotExists([]byte(q.Target))
		if err != nil {
			return err
		}
		v, err := jsonMarshal(q)
		if err != nil {
			return err
		}
		if err := b.Put(seqKey(q.Seq), v); err != nil {
			return err
		}
	}
	return nil
}
