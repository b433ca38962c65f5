package delivery

import (
	"errors"
	"time"
)

// ErrEarlierFailed marks an item error that is only a consequence of an
// earlier item's failure in the same Send: the item was not tried, or was
// sent again to keep its object's events in order. A target wraps it
// ("webhook: not sent: %w"). The engine retries such an item like any
// other, but when it quarantines it, the reason it records is the earlier
// item's error: the real cause.
var ErrEarlierFailed = errors.New("delivery: an earlier item failed")

// MaxRetryAfter caps the wait a RetryAfter error asks for: an endpoint
// that answers "Retry-After: 86400" is retried after MaxRetryAfter, so a
// wrong header cannot hold a target for a day.
const MaxRetryAfter = 5 * time.Minute

type goneError struct{ err error }

func (e *goneError) Error() string { return e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// Gone marks err as the destination being gone for good (an HTTP 410): the
// engine pauses the target (Stats.State StatePaused, Stats.LastError err)
// instead of retrying or quarantining, and keeps every event that was not
// delivered until an operator resumes it. A target returns it for the
// whole send or for the item the destination refused in a *BatchError.
// Gone(nil) is nil.
func Gone(err error) error {
	if err == nil {
		return nil
	}
	return &goneError{err}
}

// IsGone reports whether err, or an error it wraps, was marked with Gone.
func IsGone(err error) bool {
	var g *goneError
	return errors.As(err, &g)
}

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a retryable err with the wait the destination asked for
// (an HTTP Retry-After): the engine retries after d, capped by
// MaxRetryAfter, instead of its backoff. A d of 0 or less leaves the
// backoff in charge. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err, d}
}

// RetryAfterOf returns the wait err asks for with RetryAfter, capped by
// MaxRetryAfter, and whether it asks for one.
func RetryAfterOf(err error) (time.Duration, bool) {
	var r *retryAfterError
	if !errors.As(err, &r) || r.d <= 0 {
		return 0, false
	}
	return min(r.d, MaxRetryAfter), true
}
