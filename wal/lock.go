package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
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
	if err := precheck(path); err != nil {
		return nil, err
	}
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

// openError wraps an error of bolt.Open. Meta pages that fail their
// checksum are damage (ErrCorrupt); a file without bbolt's magic number
// may be no log at all, and is said so.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return fmt.Errorf("%w: %s: both meta pages are damaged (%v)", ErrCorrupt, path, err)
	case errors.Is(err, bolterrors.ErrInvalid):
		return fmt.Errorf("wal: open %s: not a bbolt file, or both its meta pages are destroyed: %w", path, err)
	}
	return fmt.Errorf("wal: open %s: %w", path, err)
}

// precheck walks the page tree of an existing file, read-only, before it
// is opened for writing. Opening for writing makes bbolt walk the pages in
// a goroutine of its own to rebuild its free list, where a damaged page
// panics beyond any recover and kills the process; here the same damage is
// an error wrapping ErrCorrupt. A file that is new, or locked by a writer
// (which Open then reports), is not walked.
func precheck(path string) (err error) {
	if fi, serr := os.Stat(path); serr != nil || fi.Size() == 0 {
		return nil
	}
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			err = damagedFile(path, r)
		}
	}()
	db, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 100 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil
	}
	if err != nil {
		return openError(path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) })
	})
}

// walkBucket visits every page of b and of the buckets nested in it.
func walkBucket(b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walkBucket(nb)
			}
		}
		return nil
	})
}
