package delivery

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Values of Stats.State.
const (
	// StateUp: the last send succeeded, or nothing has failed yet.
	StateUp = "up"
	// StateDown: the last send failed as a whole (the target could not be
	// reached or refused everything), or the log could not be read for
	// the target. The loop retries at Stats.NextRetry.
	StateDown = "down"
	// StateBackingOff: the target took part of the last send and refused
	// the rest with a retryable error (throttling, a busy partition); the
	// loop retries those items at Stats.NextRetry.
	StateBackingOff = "backing off"
)

// DefaultRepeatLogInterval is how often a failure that goes on is logged
// again, summarised.
const DefaultRepeatLogInterval = 30 * time.Second

// health is a target's state as operators see it, and the logging of its
// failures: the first failure of a streak is logged, repeats are summarised
// at most once per interval, and the end of a streak is logged once. It is
// written by the loop and read by Stats, hence its lock, which guards every
// field below it.
type health struct {
	lg    *slog.Logger
	every time.Duration

	mu          sync.Mutex
	state       string
	lastErr     string
	lastErrTime time.Time
	nextRetry   time.Time
	since       time.Time // first failure of the streak; zero while up
	failures    int       // failed attempts in the streak
	fromRead    bool      // the streak is the log's (reads), not the target's
	wasDown     bool      // a failure of the streak made the target down
	logged      time.Time // when the streak was last logged
	unlogged    int       // failures since then
	settled     bool      // a send or read set the state: probes stop
}

func newHealth(lg *slog.Logger, every time.Duration) *health {
	return &health{lg: lg, every: every, state: StateUp}
}

// failed records a failed attempt (a send, or a read of the log if
// fromRead) retried after retryIn, and logs it if it starts a streak or if
// the streak was last logged an interval ago.
func (h *health) failed(msg string, err error, state string, retryIn time.Duration, fromRead bool, attrs ...any) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settled = true
	h.state = state
	h.lastErr = err.Error()
	h.lastErrTime = now
	h.nextRetry = now.Add(retryIn)
	h.failures++
	if state == StateDown {
		h.wasDown = true
	}
	if !fromRead {
		h.fromRead = false // the target failed too: only a send ends the streak
	}
	retry := slog.Duration("retry_in", retryIn.Round(time.Millisecond))
	if h.since.IsZero() {
		h.since, h.fromRead, h.logged, h.unlogged, h.wasDown = now, fromRead, now, 0, state == StateDown
		h.lg.Warn(msg, append([]any{"err", err, retry}, attrs...)...)
		return
	}
	h.unlogged++
	if now.Sub(h.logged) < h.every {
		return
	}
	h.lg.Warn("still failing", "err", err, "failures", h.failures, "unlogged", h.unlogged,
		slog.Duration("for", now.Sub(h.since).Round(time.Millisecond)), retry)
	h.logged, h.unlogged = now, 0
}

// recovered ends the failure streak, if any, after a send went through
// (or, for a streak of failed reads, a read did): the target is up.
func (h *health) recovered(fromRead bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !fromRead {
		h.settled = true
	}
	if h.since.IsZero() {
		h.state = StateUp
		return
	}
	if fromRead && !h.fromRead {
		return // the log reads again, but the target has still to take a send
	}
	d := time.Since(h.since).Round(time.Millisecond)
	switch {
	case h.fromRead:
		h.lg.Info(fmt.Sprintf("reading the log works again after %d failures over %s", h.failures, d), "failures", h.failures, slog.Duration("down_for", d))
	case h.wasDown:
		h.lg.Info(fmt.Sprintf("target is back after %d failures over %s", h.failures, d), "failures", h.failures, slog.Duration("down_for", d))
	default:
		// The target only refused some items (backing off); it was
		// never down, so nothing came "back".
		h.lg.Debug(fmt.Sprintf("retried items delivered after %d partial failures over %s", h.failures, d), "failures", h.failures)
	}
	h.state, h.since, h.failures, h.unlogged, h.nextRetry, h.wasDown = StateUp, time.Time{}, 0, 0, time.Time{}, false
}

// probed records a probe's result while no send has set the state: a
// failed probe makes the target down, and a later successful one up again.
// It reports false once a send has set the state, when probing can stop.
func (h *health) probed(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.settled {
		return false
	}
	if err != nil {
		if h.state != StateDown {
			h.lg.Warn("target unreachable: a probe failed; its events are retried as they come", "err", err)
		}
		h.state = StateDown
		h.lastErr = "probe: " + err.Error()
		h.lastErrTime = time.Now()
		return true
	}
	if h.state == StateDown {
		h.lg.Info("target reachable: a probe succeeded")
		h.state = StateUp
	}
	return true
}

// noted records err as the last error without changing the state: an item
// was quarantined, which says nothing about whether the target is up.
func (h *health) noted(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastErr = err.Error()
	h.lastErrTime = time.Now()
}

// fill copies the health fields into s.
func (h *health) fill(s *Stats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.State = h.state
	s.Up = h.state == StateUp
	s.LastError = h.lastErr
	s.LastErrorTime = h.lastErrTime
	s.NextRetry = h.nextRetry
}
