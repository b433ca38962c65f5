package delivery

import (
	"context"
	"errors"
)

// Replace stops target s.ID's loop, closes its Target, and starts a new
// loop on s (a new configuration of the same target) from the cursor the
// log holds, so nothing routed to it is lost. The target stays paused if
// it was, and its counts (delivered, retried, quarantined, sends,
// re-driven) go on from where they were: metrics see a changed target, not
// a new one. A send in flight is let finish, up to ShutdownGrace or until
// ctx ends; if ctx ends first the target is removed (as by Remove) and the
// error returned.
func (e *Engine) Replace(ctx context.Context, s Spec) error {
	if s.ID == "" || s.Target == nil {
		return errors.New("delivery: spec needs an ID and a Target")
	}
	if s.MaxBatch <= 0 {
		s.MaxBatch = DefaultMaxBatch
	}
	old, err := e.detach(ctx, s.ID, false)
	if err != nil {
		s.Target.Close()
		return err
	}
	// The old loop has ended: its spec is no longer read.
	old.spec = s
	return e.readd(old)
}
