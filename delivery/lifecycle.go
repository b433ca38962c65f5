package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrStopped is returned by Add after Run has returned.
var ErrStopped = errors.New("delivery: engine stopped")

// runState is what Run shares with the loops it starts, including those
// added while it runs.
type runState struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool // guarded by Engine.mu: no loop starts once set

	once  sync.Once
	first error
}

func (rs *runState) fail(err error) {
	rs.once.Do(func() { rs.first = err; rs.cancel() })
}

func (rs *runState) err() error {
	rs.once.Do(func() {}) // a happens-before edge with fail
	return rs.first
}

// start runs l until the run's context ends or l is stopped. e.mu is held.
func (e *Engine) start(l *loop) {
	rs := e.run
	ctx, cancel := context.WithCancel(rs.ctx)
	l.stop = cancel
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer close(l.done)
		defer cancel()
		probed := make(chan struct{})
		if p, ok := l.spec.Target.(Prober); ok {
			go func() { defer close(probed); l.probe(ctx, p) }()
		} else {
			close(probed)
		}
		counted := make(chan struct{})
		if !l.counted() {
			// Counting reads the backlog: beside delivery, not before it.
			go func() { defer close(counted); l.count(ctx) }()
		} else {
			close(counted)
		}
		if err := l.run(ctx); err != nil {
			l.lg.Error("delivery stopped", "err", err)
			rs.fail(err)
		}
		cancel()
		<-probed  // ends with ctx; Close must not race a probe
		<-counted // ends with ctx; the log outlives no loop's reads
		if l.keepTarget.Load() {
			return
		}
		if err := l.spec.Target.Close(); err != nil {
			l.lg.Warn("closing target", "err", err)
		}
	}()
}

// detach takes target's loop out of the engine, stops it and waits until
// it has ended (a send in flight may take ShutdownGrace) or ctx ends. With
// keep the target stays open for a new loop. e.mu is not held.
func (e *Engine) detach(ctx context.Context, target string, keep bool) (*loop, error) {
	e.mu.Lock()
	l, ok := e.loops[target]
	if !ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrUnknownTarget, target)
	}
	delete(e.loops, target)
	e.order = slices.DeleteFunc(e.order, func(id string) bool { return id == target })
	started := l.stop != nil
	e.mu.Unlock()
	l.keepTarget.Store(keep)
	if !started {
		if !keep {
			if err := l.spec.Target.Close(); err != nil {
				l.lg.Warn("closing target", "err", err)
			}
		}
		return l, nil
	}
	l.stop()
	select {
	case <-l.done:
		return l, nil
	case <-ctx.Done():
		return l, fmt.Errorf("delivery: stopping %s: %w", target, ctx.Err())
	}
}

// Remove stops delivering to target and closes it. Its cursor, backlog
// and quarantine stay in the log: releasing them is the caller's choice
// (wal.Log.Release). A send in flight is let finish, up to ShutdownGrace
// or until ctx ends, whichever comes first.
func (e *Engine) Remove(ctx context.Context, target string) error {
	_, err := e.detach(ctx, target, false)
	return err
}

// Restart stops target's loop, calls between while no loop of the target
// runs (to move its cursor in the log, say: a rewind), and starts a new
// loop from the cursor the log then holds, keeping the Target, its spec
// and whether it was paused. If between fails, the loop is restarted all
// the same and its error returned.
func (e *Engine) Restart(ctx context.Context, target string, between func() error) error {
	old, err := e.detach(ctx, target, true)
	if err != nil {
		if old != nil {
			// The old loop may still be sending: it keeps the target; a
			// new loop would send concurrently on it. Put the loop back
			// only once it has ended.
			go func() {
				<-old.done
				_ = e.readd(old)
			}()
		}
		return err
	}
	var berr error
	if between != nil {
		berr = between()
	}
	if err := e.readd(old); err != nil {
		return err
	}
	return berr
}

// readd registers a new loop for old's spec, paused as old was.
func (e *Engine) readd(old *loop) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.loops[old.spec.ID]; ok {
		return fmt.Errorf("delivery: target %s added twice", old.spec.ID)
	}
	l, err := e.newLoop(old.spec)
	if err != nil {
		return err
	}
	l.paused.Store(old.paused.Load())
	// Counts survive the restart: they describe the target, not the loop.
	l.delivered.Store(old.delivered.Load())
	l.retried.Store(old.retried.Load())
	l.quarantined.Store(old.quarantined.Load())
	l.sends.Store(old.sends.Load())
	l.redriven.Store(old.redriven.Load())
	l.resent.Store(old.resent.Load())
	e.loops[l.spec.ID] = l
	e.order = append(e.order, l.spec.ID)
	if e.run != nil && !e.run.closed {
		e.start(l)
	} else if e.run != nil {
		// The engine is stopping: nobody will close the target.
		if err := l.spec.Target.Close(); err != nil {
			l.lg.Warn("closing target", "err", err)
		}
	}
	return nil
}
