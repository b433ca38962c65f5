package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

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
	DefaultWindowBytes    = 64 << 20
)

// Options configures an Engine. The zero value is usable.
type Options struct {
	// MinBackoff is the first retry delay; 0 means DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the retry delay, jitter included; 0 means
	// DefaultMaxBackoff. A MaxBackoff below MinBackoff is raised to it.
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
	// WindowBytes bounds the bytes (keys, names and record data, plus a
	// small per-item overhead) one read of the log may hold: a namespace
	// target's coalescing window, counting only the items it keeps, and
	// every other target's batch. A loop holds at most two windows, the
	// one being sent and the next, read ahead. A single record larger
	// than WindowBytes is still read, alone. 0 means DefaultWindowBytes
	// (64 MiB).
	WindowBytes int64
	// RepeatLogInterval is how often a failure that goes on is logged
	// again: the first failure is logged at once, then one summary line
	// (failures so far, for how long, the last error) per interval, and
	// one line when the target is back. 0 means DefaultRepeatLogInterval.
	RepeatLogInterval time.Duration
	// ShutdownGrace is how long a send in flight when Run's context ends
	// may take to finish; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logger receives delivery messages; nil means slog.Default().
	Logger *slog.Logger
	// OnGone, if set, is called (from the target's loop, once per pause)
	// when a destination said it is gone and the engine paused the target
	// (see Gone), so an embedder can keep the pause across restarts. It
	// must not call back into the Engine.
	OnGone func(target string, err error)
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
	// Policy is the target's own delivery policy (policy.go); its zero
	// value keeps the engine's Options and sends one batch at a time.
	Policy
}

// Stats is a snapshot of one target's delivery.
type Stats struct {
	// ID is the target's ARN.
	ID string
	// Cursor is the next sequence the target has to deliver.
	Cursor uint64
	// Pending counts events routed to the target and not yet delivered.
	// While Counting, it is a lower bound of at least 1.
	Pending int64
	// Counting reports that the backlog the target had when it was added
	// is still being read to count it (a log without BacklogCounter, such
	// as a lane of the JetStream log); delivery does not wait for it.
	Counting bool
	// Delivered counts events delivered, coalesced away or with nothing
	// to write.
	Delivered uint64
	// Retried counts failed sends that were retried.
	Retried uint64
	// Quarantined counts events moved to the target's quarantine.
	Quarantined uint64
	// Sends counts successful Send calls.
	Sends uint64
	// Redriven counts quarantined events re-driven (Engine.Redrive) and
	// delivered. They are not counted in Delivered; a re-driven event that
	// fails again is counted in Quarantined again.
	Redriven uint64
	// Resent counts items sent again because a batch before them in a
	// pipeline failed (Policy.InFlight): the target may hold them twice.
	Resent uint64
	// State is StateUp, StateDown, StateBackingOff or StatePaused.
	State string
	// Up reports that the last send succeeded (or nothing failed yet): the
	// target's health whether or not it is paused.
	Up bool
	// Paused reports that the target's delivery is held (Engine.Pause).
	Paused bool
	// LastError is the last failure's error, or the last quarantine's
	// reason; empty if nothing failed since Add.
	LastError string
	// LastErrorTime is when LastError happened (zero if it never did).
	LastErrorTime time.Time
	// NextRetry is when the loop retries a failed send or read; zero
	// while the target is up.
	NextRetry time.Time
}

// Engine runs one drain loop per target.
type Engine struct {
	log   Log
	logID string // the log's id, when it has one: items carry it
	opts  Options
	lg    *slog.Logger
	mu    sync.Mutex
	loops map[string]*loop
	order []string
	run   *runState // set by Run (lifecycle.go)
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
	if opts.WindowBytes <= 0 {
		opts.WindowBytes = DefaultWindowBytes
	}
	if opts.RepeatLogInterval <= 0 {
		opts.RepeatLogInterval = DefaultRepeatLogInterval
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = DefaultShutdownGrace
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	e := &Engine{log: l, opts: opts, lg: lg, loops: map[string]*loop{}}
	if idl, ok := l.(interface{ ID() string }); ok {
		e.logID = idl.ID()
	}
	return e
}

// Add registers a target: it gets a cursor in the log (starting after the
// last record if it is new). Its backlog is counted at once if the log is
// a BacklogCounter, otherwise by the loop, reading it while it already
// delivers (Stats.Counting): Add never reads the backlog. A target added
// before Run starts with Run; one added while Run runs starts at once (a
// target configured at runtime). Add fails once Run has returned.
func (e *Engine) Add(s Spec) error {
	if s.ID == "" || s.Target == nil {
		return errors.New("delivery: spec needs an ID and a Target")
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = DefaultMaxBatch
	}
	if err := s.Policy.check(s.ID); err != nil {
		return err
	}
	s.MaxBatch = s.Policy.batchCap(s.MaxBatch)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.run != nil && e.run.closed {
		return fmt.Errorf("delivery: adding %s: %w", s.ID, ErrStopped)
	}
	if _, ok := e.loops[s.ID]; ok {
		return fmt.Errorf("delivery: target %s added twice", s.ID)
	}
	l, err := e.newLoop(s)
	if err != nil {
		return err
	}
	e.loops[s.ID] = l
	e.order = append(e.order, s.ID)
	if e.run != nil {
		e.start(l)
	}
	return nil
}

// newLoop makes the drain loop of s, starting at its cursor in the log.
// Its backlog is counted here only if that is cheap (countQuick): e.mu is
// held, and reading a large backlog would stall the engine. Otherwise the
// loop counts it while it delivers (backlog.go).
func (e *Engine) newLoop(s Spec) (*loop, error) {
	cursor := e.log.Register(s.ID)
	lg := e.lg.With("target", s.ID)
	l := &loop{
		spec: s, e: e, lg: lg, h: newHealth(lg, e.opts.RepeatLogInterval),
		cursor: cursor, attempts: map[uint64]int{},
		kick: make(chan struct{}, 1), queued: map[uint64]bool{}, rattempts: map[uint64]int{},
		done: make(chan struct{}), limiter: s.Policy.limiter(),
	}
	l.countQuick()
	l.pos.Store(cursor) // Stats reads pos, never the cursor run owns
	l.bo = &backoff.ExponentialBackOff{
		InitialInterval:     e.opts.MinBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         e.opts.MaxBackoff,
	}
	l.bo.Reset()
	return l, nil
}

// Run runs every drain loop until ctx ends, lets sends in flight finish
// (up to ShutdownGrace), closes the targets and returns nil. If a loop
// meets an error it cannot go on from (the log failed, wrapping
// wal.ErrFailed, or was closed under the engine, wal.ErrClosed), it logs
// it, the other loops are stopped the same way, and Run returns the first
// such error: the log is unusable and the relay must stop. Run is called
// once.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs := &runState{ctx: ctx, cancel: cancel}
	e.mu.Lock()
	if e.run != nil {
		e.mu.Unlock()
		return errors.New("delivery: Run called twice")
	}
	e.run = rs
	for _, id := range e.order {
		e.start(e.loops[id])
	}
	e.mu.Unlock()
	<-ctx.Done()
	// Add starts loops under mu only while the run is open: once closed
	// here, wg counts every loop that will ever run.
	e.mu.Lock()
	rs.closed = true
	e.mu.Unlock()
	rs.wg.Wait()
	return rs.err()
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
