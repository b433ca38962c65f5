package wal

import (
	"errors"
	"fmt"
	"syscall"
)

// stop puts the log in its failed state after a storage error: every
// writing call fails from now on with an error wrapping ErrFailed, and
// Failed's channel is closed. It returns that error.
func (l *Log) stop(cause error) error {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	if l.ix.failErr == nil {
		l.ix.failErr = fmt.Errorf("%w: %s: %v", ErrFailed, l.db.Path(), cause)
		l.log.Error("wal: storage failed; the log stops taking events", "file", l.db.Path(), "err", cause)
		close(l.ix.failed)
		l.ix.wake() // wake appenders waiting for room
	}
	return l.ix.failErr
}

// Failed returns a channel that is closed when the log stops after a
// storage error. The relay exits then: see Health for the error.
func (l *Log) Failed() <-chan struct{} { return l.ix.failed }

// Health returns nil while the log takes events, or the error that stopped
// it (wrapping ErrFailed).
func (l *Log) Health() error {
	l.ix.mu.Lock()
	defer l.ix.mu.Unlock()
	return l.ix.failErr
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
