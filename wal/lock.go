package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockLogEvery is how often Open says it still waits for readers.
const lockLogEvery = 10 * time.Second

// openWaiting opens the bbolt file for writing. While only readers
// (OpenReadOnly: walinspect) hold its lock it waits up to wait, saying so
// in the log, since a reader ends by itself; a writer holding it is
// another relay, which does not: that fails at once with ErrLocked.
func openWaiting(path string, wait time.Duration, lg *slog.Logger, opts *bolt.Options) (*bolt.DB, error) {
	start := time.Now()
	var logged time.Time
	for {
		db, err := bolt.Open(path, 0o600, opts)
		if !errors.Is(err, bolterrors.ErrTimeout) {
			if err != nil {
				return nil, openError(path, err)
			}
			return db, nil
		}
		if !readersOnly(path) {
			return nil, fmt.Errorf("%w: %s is held by a running relay", ErrLocked, path)
		}
		if time.Since(start) >= wait {
			return nil, fmt.Errorf("%w: %s is still held by a reader (such as walinspect) after %s", ErrLocked, path, wait)
		}
		if time.Since(logged) >= lockLogEvery {
			lg.Warn("wal: a reader (such as walinspect) holds the log; waiting for it to finish", "file", path, "waited", time.Since(start).Round(time.Second), "maxWait", wait)
			logged = time.Now()
		}
	}
}

// openError wraps an error of bolt.Open; a file whose meta pages bbolt
// rejects is damage (ErrCorrupt).
func openError(path string, err error) error {
	if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return fmt.Errorf("wal: open %s: %w", path, err)
}
