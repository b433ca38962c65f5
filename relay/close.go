package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
)

// abandonWait is how long Close waits, after its deadline has cancelled
// the sends in flight, for the drain loops to notice before it closes the
// log: long enough for a target that honours its context, short enough
// that Close still returns by about the deadline.
const abandonWait = 50 * time.Millisecond

// Close stops accepting events (Publish returns ErrClosed), lets the sends
// in flight finish, commits every target's cursor and closes the log and
// the targets.
//
// ctx bounds the wait for sends in flight: when it ends first, they are
// cancelled and abandoned, and Close returns by about the deadline with an
// error wrapping ctx.Err(). Either way nothing acknowledged is lost: a
// cursor only passes events their target acknowledged, so an abandoned
// send's events are delivered again (at least once) after the relay is
// opened again. A target whose Send ignores its context may still be
// running when Close returns; its outcome is discarded.
//
// Close is safe to call more than once; later calls return the first
// call's result.
func (r *Relay) Close(ctx context.Context) error {
	r.once.Do(func() { r.closeErr = r.close(ctx) })
	return r.closeErr
}

func (r *Relay) close(ctx context.Context) error {
	r.closing.Store(true)
	r.cancel() // drain loops stop after their send in flight
	var abandoned error
	select {
	case <-r.done:
	case <-ctx.Done():
		abandoned = fmt.Errorf("relay: close: sends in flight abandoned: %w", ctx.Err())
		r.lg.Warn("closing: sends in flight abandoned at the deadline; their events are delivered again after a restart")
		r.abortSends()
		t := time.NewTimer(abandonWait)
		select {
		case <-r.done:
		case <-t.C:
		}
		t.Stop()
	}
	r.abortSends()
	if r.cluster != nil {
		r.cluster.stop() // releases the lanes' leases: others take them at once
	}
	// Closing the log commits the cursors the loops moved; a loop still
	// stuck in a send finds the log closed and stops without moving its own.
	return errors.Join(abandoned, r.log.Close())
}

// abortable wraps t so that Close can cancel its send in flight.
// Optional interfaces of the target (delivery.Prober) stay visible.
func (r *Relay) abortable(t delivery.Target) delivery.Target {
	a := &abortableTarget{Target: t, abort: r.abort}
	if p, ok := t.(delivery.Prober); ok {
		return &abortableProber{abortableTarget: a, p: p}
	}
	return a
}

// abortableProber is an abortableTarget whose target can be probed.
type abortableProber struct {
	*abortableTarget
	p delivery.Prober
}

// Probe probes the wrapped target.
func (a *abortableProber) Probe(ctx context.Context) error { return a.p.Probe(ctx) }

// abortableTarget is a target whose sends end when abort does.
type abortableTarget struct {
	delivery.Target
	abort context.Context
}

// Send calls the target with a context that also ends when Close abandons
// the sends. An abandoned send's error is reported as retryable whatever
// the target made of it, so no event is quarantined because the relay was
// closing.
func (a *abortableTarget) Send(ctx context.Context, items []delivery.Item) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.abort, cancel)
	defer stop()
	err := a.Target.Send(ctx, items)
	if err != nil && a.abort.Err() != nil {
		return fmt.Errorf("relay: send abandoned by Close: %w", a.abort.Err())
	}
	return err
}
