package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Defaults for Options.
const (
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultMaxBatch       = 1000
	DefaultCoalesceEvents = 1_000_000
	DefaultCoalesceKeys   = 50_000
	DefaultShutdownGrace  = 10 * time.Second
)

// Options configures an Engine. The zero value is usable.
type Options struct {
	// MinBackoff is the first retry delay; 0 means DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the retry delay; 0 means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// MaxAttempts quarantines an item after that many failed attempts;
	// 0 means retry forever.
	MaxAttempts int
	// CoalesceEvents bounds the records a namespace target's loop reads
	// into one coalescing window; 0 means DefaultCoalesceEvents.
	CoalesceEvents int
	// CoalesceKeys bounds the distinct keys of one window; 0 means
	// DefaultCoalesceKeys.
	CoalesceKeys int
	// ShutdownGrace is how long a send in flight when Run's context ends
	// may take to finish; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logger receives delivery messages; nil means slog.Default().
	Logger *slog.Logger
}

// Spec describes a target to the engine.
type Spec struct {
	// ID names the target in the log and in metrics: its ARN.
	ID string
	// Target sends the events.
	Target Target
	// Namespace asks for coalesced batches (see the package comment).
	Namespace bool
	// MaxBatch bounds the items of one Send; 0 means DefaultMaxBatch.
	MaxBatch int
}

// Stats is a snapshot of one target's delivery.
type Stats struct {
	ID          string
	Cursor      uint64
	Pending     int64 // events routed to the target and not yet delivered
	Delivered   uint64
	Retried     uint64 // failed sends that were retried
	Quarantined uint64
	Sends       uint64 // successful Send calls (writes to the target)
	LastError   string
	Up          bool // the last send succeeded
}

// Engine runs one drain loop per target.
type Engine struct {
	log   Log
	opts  Options
	lg    *slog.Logger
	mu    sync.Mutex
	loops map[string]*loop
	order []string
}

// New returns an engine draining l.
func New(l Log, opts Options) *Engine {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.CoalesceEvents <= 0 {
		opts.CoalesceEvents = DefaultCoalesceEvents
	}
	if opts.CoalesceKeys <= 0 {
		opts.CoalesceKeys = DefaultCoalesceKeys
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	return &Engine{log: l, opts: opts, lg: lg, loops: map[string]*loop{}}
}

// Add registers a target: it gets a cursor in the log (starting after the
// last record if it is new) and its backlog is counted. Add must be called
// before records are routed to the target and before Run.
func (e *Engine) Add(s Spec) error {
	if s.ID == "" || s.Target == nil {
		return errors.New("delivery: spec needs an ID and a Target")
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = DefaultMaxBatch
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.loops[s.ID]; ok {
		return fmt.Errorf("delivery: target %s added twice", s.ID)
	}
	cursor := e.log.Register(s.ID)
	// Pending is the backlog now plus what is routed later less what the
	// loop passes: count the backlog up to a sequence the routed counter
	// was read at.
	routed0, last := e.log.Routed(s.ID)
	var backlog int64
	if _, err := e.log.Read(context.Background(), cursor, s.ID, func(r wal.Record) bool {
		if r.Seq > last {
			return false
		}
		backlog++
		return true
	}); err != nil {
		return fmt.Errorf("delivery: counting backlog of %s: %w", s.ID, err)
	}
	l := &loop{spec: s, e: e, lg: e.lg.With("target", s.ID), cursor: cursor, routed0: routed0, backlog: backlog}
	l.bo = &backoff.ExponentialBackOff{
		InitialInterval:     e.opts.MinBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         e.opts.MaxBackoff,
	}
	l.bo.Reset()
	l.up.Store(true)
	e.loops[s.ID] = l
	e.order = append(e.order, s.ID)
	return nil
}

// Run runs every drain loop until ctx ends, lets sends in flight finish
// (up to ShutdownGrace), closes the targets and returns.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	loops := make([]*loop, 0, len(e.loops))
	for _, id := range e.order {
		loops = append(loops, e.loops[id])
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx)
			if err := l.spec.Target.Close(); err != nil {
				l.lg.Warn("closing target", "err", err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// Stats returns a snapshot of every target, in the order they were added.
func (e *Engine) Stats() []Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Stats, 0, len(e.loops))
	for _, id := range e.order {
		out = append(out, e.loops[id].stats())
	}
	return out
}

// OldestPending returns the append time of target's oldest pending record,
// and false if it has none.
func (e *Engine) OldestPending(target string) (time.Time, bool) {
	c, ok := e.log.Cursor(target)
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	found := false
	_, _ = e.log.Read(context.Background(), c, target, func(r wal.Record) bool { t, found = r.AppendTime, true; return false })
	return t, found
}

type loop struct {
	spec   Spec
	e      *Engine
	lg     *slog.Logger
	cursor uint64 // owned by run

	bo      *backoff.ExponentialBackOff // reset by every successful send
	routed0 uint64                      // the log's routed count for the target at Add
	backlog int64                       // records pending at Add

	consumed    atomic.Int64 // records the cursor passed since Add
	delivered   atomic.Uint64
	retried     atomic.Uint64
	quarantined atomic.Uint64
	sends       atomic.Uint64
	up          atomic.Bool
	lastErr     atomic.Pointer[string]
	pos         atomic.Uint64
}

// pending returns the records routed to the target that its cursor has not
// passed.
func (l *loop) pending() int64 {
	routed, _ := l.e.log.Routed(l.spec.ID)
	return int64(routed-l.routed0) + l.backlog - l.consumed.Load()
}

func (l *loop) stats() Stats {
	s := Stats{
		ID: l.spec.ID, Cursor: l.pos.Load(), Pending: l.pending(),
		Delivered: l.delivered.Load(), Retried: l.retried.Load(), Quarantined: l.quarantined.Load(),
		Sends: l.sends.Load(), Up: l.up.Load(),
	}
	if p := l.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	if s.Cursor == 0 {
		s.Cursor = l.cursor
	}
	return s
}

// window is one read of the log: the items to send, how many of the
// target's records they cover (coalesced ones included), where the next
// read starts, and the append signal taken before reading.
type window struct {
	items []Item
	n     int
	next  uint64
	wake  <-chan struct{}
	err   error
}

// readAt reads the window starting at from.
func (l *loop) readAt(from uint64) window {
	w := window{wake: l.e.log.Appended()} // taken before reading, so no append is missed
	w.items, w.n, w.next, w.err = l.read(from)
	return w
}

func (l *loop) run(ctx context.Context) {
	log := l.e.log
	l.pos.Store(l.cursor)
	w := l.readAt(l.cursor)
	for ctx.Err() == nil {
		if w.err != nil {
			l.fail(w.err)
			l.lg.Error("reading the log", "err", w.err)
			select {
			case <-ctx.Done():
			case <-time.After(l.e.opts.MaxBackoff):
			}
			w = l.readAt(l.cursor)
			continue
		}
		var prefetch chan window
		if len(w.items) > 0 {
			// Read the next window while this one is being sent.
			prefetch = make(chan window, 1)
			go func(from uint64) { prefetch <- l.readAt(from) }(w.next)
			switch l.deliver(ctx, w.items) {
			case stopped:
				<-prefetch
				return // shutting down; the cursor stays before the window
			case reread:
				<-prefetch
				w = l.readAt(l.cursor)
				continue
			}
		}
		if w.next > l.cursor {
			l.cursor = w.next
			l.pos.Store(w.next)
			l.consumed.Add(int64(w.n))
			// Records coalesced away or with nothing to write count as
			// delivered once the window is done.
			l.delivered.Add(uint64(w.n - len(w.items)))
			if err := log.Advance(l.spec.ID, w.next); err != nil {
				return
			}
		}
		if prefetch != nil {
			w = <-prefetch
			continue
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		}
		w = l.readAt(l.cursor)
	}
}

// read returns the batch starting at from, the number of the target's
// records it covers (coalesced ones included) and the cursor after it.
func (l *loop) read(from uint64) ([]Item, int, uint64, error) {
	max := l.spec.MaxBatch
	if l.spec.Namespace {
		max = l.e.opts.CoalesceEvents
	}
	var items []Item
	var byKey map[string]int
	if l.spec.Namespace {
		byKey = map[string]int{}
	}
	n := 0
	full := false // the window's key limit stopped the read
	var taken uint64
	next, err := l.e.log.Read(context.Background(), from, l.spec.ID, func(r wal.Record) bool {
		it := Item{Seq: r.Seq, Key: r.Key, EventName: event.Name(r.Name), EventTime: r.EventTime, Record: r.Data}
		if byKey != nil && len(byKey) >= l.e.opts.CoalesceKeys {
			if _, ok := byKey[it.Key]; !ok {
				full = true
				return false
			}
		}
		taken = r.Seq
		n++
		if byKey == nil {
			items = append(items, it)
			return n < max
		}
		if it.Op() == event.OpNone {
			return n < max // nothing to write: delivered by definition
		}
		if i, ok := byKey[it.Key]; ok {
			items[i].Seq = 0 // superseded
		}
		byKey[it.Key] = len(items)
		items = append(items, it)
		return n < max
	})
	if err != nil {
		return nil, 0, 0, err
	}
	if full {
		next = taken + 1 // resume at the record that did not fit
		if taken == 0 {
			next = from
		}
	}
	if byKey != nil {
		kept := items[:0]
		for _, it := range items {
			if it.Seq != 0 {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	return items, n, next, nil
}

// deliver sends items in batches of MaxBatch until each is delivered or
// quarantined. It returns false if ctx ended first.
// outcome says how a delivery attempt ended.
type outcome int

const (
	delivered outcome = iota // every item delivered or quarantined
	stopped                  // ctx ended first
	reread                   // nothing was written: read a wider window
)

func (l *loop) deliver(ctx context.Context, items []Item) outcome {
	first := true
	for len(items) > 0 {
		n := min(len(items), l.spec.MaxBatch)
		// A namespace window that fails before any write is read again
		// after the backoff, so events that arrived meanwhile are
		// coalesced into it: one write per key over the whole outage.
		if o := l.deliverBatch(ctx, items[:n], first && l.spec.Namespace); o != delivered {
			return o
		}
		first = false
		items = items[n:]
	}
	return delivered
}

func (l *loop) deliverBatch(ctx context.Context, batch []Item, rereadOK bool) outcome {
	bo := l.bo
	attempts := make(map[uint64]int, len(batch))
	single := false // after a permanent error on a batch, isolate items
	pending := batch
	for len(pending) > 0 {
		if ctx.Err() != nil {
			return stopped
		}
		send := pending
		if single {
			send = pending[:1]
		}
		err := l.send(ctx, send)
		for _, it := range send {
			attempts[it.Seq]++
		}
		if err == nil {
			l.ok(len(send))
			pending = pending[len(send):]
			if !single {
				bo.Reset()
			}
			continue
		}
		var failed []ItemError
		var be *BatchError
		switch {
		case errors.As(err, &be):
			failed = be.Failed
		case IsPermanent(err) && len(send) == 1:
			failed = []ItemError{{0, err}}
		case IsPermanent(err):
			single = true // find which items are bad, one at a time
			continue
		default:
			failed = make([]ItemError, len(send))
			for i := range send {
				failed[i] = ItemError{i, err}
			}
		}
		sort.Slice(failed, func(i, j int) bool { return failed[i].Index < failed[j].Index })
		var retry []Item
		var lastErr error
		quarantined := 0
		for _, f := range failed {
			if f.Index < 0 || f.Index >= len(send) {
				continue
			}
			it := send[f.Index]
			if IsPermanent(f.Err) || (l.e.opts.MaxAttempts > 0 && attempts[it.Seq] >= l.e.opts.MaxAttempts) {
				l.quarantine(it, f.Err, attempts[it.Seq])
				quarantined++
				single = false // the bad item is found
				continue
			}
			retry = append(retry, it)
			if lastErr == nil {
				lastErr = f.Err // the first failure is the cause
			}
		}
		l.ok(len(send) - len(retry) - quarantined)
		pending = append(retry, pending[len(send):]...)
		if len(retry) == 0 {
			continue
		}
		l.fail(lastErr)
		l.retried.Add(1)
		d := bo.NextBackOff()
		l.lg.Warn("send failed, retrying", "err", lastErr, "items", len(retry), "retry_in", d.Round(time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return stopped
		}
		if rereadOK && len(pending) == len(batch) {
			return reread
		}
	}
	return delivered
}

// send calls the target. A send in flight when ctx ends may go on for
// ShutdownGrace, so SIGTERM does not cut a batch the target is taking.
func (l *loop) send(ctx context.Context, items []Item) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(l.e.opts.ShutdownGrace, cancel)
		context.AfterFunc(sctx, func() { t.Stop() })
	})
	defer stop()
	err := l.spec.Target.Send(sctx, items)
	if err == nil {
		l.sends.Add(1)
	}
	return err
}

func (l *loop) ok(n int) {
	if n <= 0 {
		return
	}
	l.delivered.Add(uint64(n))
	if !l.up.Load() {
		l.lg.Info("target is back")
	}
	l.up.Store(true)
}

func (l *loop) fail(err error) {
	s := err.Error()
	l.lastErr.Store(&s)
	l.up.Store(false)
}

func (l *loop) quarantine(it Item, err error, attempts int) {
	r := wal.Record{Seq: it.Seq, Entry: wal.Entry{Key: it.Key, Name: string(it.EventName), EventTime: it.EventTime, Data: it.Record}}
	if qerr := l.e.log.Quarantine(l.spec.ID, r, err.Error(), attempts); qerr != nil {
		l.lg.Error("quarantining", "seq", it.Seq, "err", qerr)
	}
	l.quarantined.Add(1)
	l.fail(err)
	l.lg.Warn("event quarantined", "seq", it.Seq, "key", it.Key, "err", err, "attempts", attempts)
}
