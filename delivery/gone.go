package delivery

import "context"

// goneIn returns the first failure marked with Gone, or nil.
func goneIn(failed []ItemError) error {
	for _, f := range failed {
		if IsGone(f.Err) {
			return f.Err
		}
	}
	return nil
}

// holdGone pauses the target because its destination said it is gone
// (err, marked with Gone), reports it (state paused, last error err) and
// waits for an operator's Resume (Options.OnGone hears of it first); the items not delivered stay pending
// and are sent then, in order, without counting an attempt. It reports
// false if ctx ended first.
func (l *loop) holdGone(ctx context.Context, err error) bool {
	// OnGone first, so whoever sees the state paused finds the pause kept.
	if f := l.e.opts.OnGone; f != nil {
		f(l.spec.ID, err)
	}
	l.h.failed("destination is gone: target paused until resumed", err, StateDown, 0, false)
	l.paused.Store(true)
	return l.hold(ctx)
}
