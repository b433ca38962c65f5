package jslog

import (
	"log/slog"
	"sync"
)

// outage logs a background task's failures once per outage: a warning at
// the first failure, one line when it works again, nothing in between (a
// task retried every second while the stream has no quorum would
// otherwise fill the log).
type outage struct {
	mu     sync.Mutex
	down   bool
	failed int // failures since the warning
}

// fail logs msg as a warning if the task was working until now.
func (o *outage) fail(lg *slog.Logger, msg string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed++
	if o.down {
		return
	}
	o.down = true
	lg.Warn(msg+"; retrying, logged again when it works", args...)
}

// ok logs msg if the task had failed, with how often.
func (o *outage) ok(lg *slog.Logger, msg string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return
	}
	lg.Info(msg, append(args, "failures", o.failed)...)
	o.down, o.failed = false, 0
}
