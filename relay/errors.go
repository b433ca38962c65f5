package relay

import (
	"errors"

	"github.com/bucketrelay/bucketrelay/wal"
)

// Errors of package relay, matched with errors.Is. Those of the log are the
// log's own sentinels (relay.ErrFull == wal.ErrFull), so a caller of
// package relay never imports the log to match them, and code that matches
// wal's sentinels keeps working.
var (
	// ErrFull is wrapped by Publish when the log stays full (Settings.QueueLimit,
	// QueueLimitBytes) until the context ends: nothing was logged; retry
	// later or answer the client 503 SlowDown.
	ErrFull = wal.ErrFull
	// ErrTooLarge is wrapped by Publish when the records could never fit in
	// the log's limits.
	ErrTooLarge = wal.ErrTooLarge
	// ErrClosed is returned by Publish once Close has begun.
	ErrClosed = wal.ErrClosed
	// ErrNoSpace is wrapped by Publish when the file system is full (ENOSPC):
	// nothing was logged; the call may be retried once space frees.
	ErrNoSpace = wal.ErrNoSpace
	// ErrFailed is wrapped by Publish after a write or fsync of the log
	// failed: the log stopped (fail-stop) and the relay must be closed and
	// opened again.
	ErrFailed = wal.ErrFailed
	// ErrUnknownTarget is wrapped by SetBucketRules (and the bucket
	// notification handlers) for a rule whose ARN is not an enabled target.
	ErrUnknownTarget = errors.New("relay: no enabled target with ARN")
	// ErrUnknownARN is ErrUnknownTarget under its first name.
	//
	// Deprecated: use ErrUnknownTarget; both are the same value.
	ErrUnknownARN = ErrUnknownTarget
)

// ErrInvalid (declared beside Publish) is wrapped by Publish errors about a
// malformed record.
