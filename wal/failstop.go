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
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr == nil {
		l.failErr = fmt.Errorf("%w: %s: %v", ErrFailed, l.db.Path(), cause)
		l.log.Error("wal: storage failed; the log stops taking events", "file", l.db.Path(), "err", cause)
		close(l.failed)
		close(l.freed) // wake appenders waiting for room
		l.freed = make(chan struct{})
	}
	return l.failErr
}

// Failed returns a channel that is closed when the log stops after a
// storage error. The relay exits then: see Health for the error.
func (l *Log) Failed() <-chan struct{} { return l.failed }

// Health returns nil while the log takes events, or the error that stopped
// it (wrapping ErrFailed).
func (l *Log) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failErr
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
