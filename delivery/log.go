package delivery

import (
	"context"

	"github.com/bucketrelay/bucketrelay/wal"
)

// Log is what the delivery engine needs of a log: per-target cursors over
// an ordered sequence of records, a quarantine, and a signal for new
// records. wal.Log (one bbolt file) satisfies it; so must any other log the
// relay runs on. Its methods are called concurrently, by one drain loop per
// target.
type Log interface {
	// Register makes sure target has a cursor, starting it after the last
	// record if it is new, and returns the cursor: the next sequence the
	// target has to deliver.
	Register(target string) uint64
	// Cursor returns target's cursor and whether it has one.
	Cursor(target string) (uint64, bool)
	// Routed returns how many records routed to target were committed since
	// the log was opened, and the last committed sequence, as of one moment.
	Routed(target string) (n, lastSeq uint64)
	// Read calls fn for each committed record from sequence from on that is
	// routed to target, in order, until fn returns false, the records end
	// or ctx ends. It returns the sequence the next Read should start at.
	// A damaged frame is passed over: the log quarantines its records for
	// the targets that still needed them. An error means the log cannot be
	// read at all (or ctx ended); one wrapping wal.ErrCorrupt is retried.
	// fn may keep the record, its Key and its Data after it returns
	// (delivery items share them, without a copy): the log never writes to
	// or reuses them, and keeps alive no more than about twice the bytes
	// of the records it passed (wal copies a sparse target's records out
	// of a large frame; jslog hands out a fresh copy of each).
	Read(ctx context.Context, from uint64, target string, fn func(wal.Record) bool) (uint64, error)
	// Appended returns a channel closed at the next commit of new records.
	Appended() <-chan struct{}
	// Advance moves target's cursor to next; it never moves back. It fails
	// once the log is closed or has failed, and the loop must stop then.
	Advance(target string, next uint64) error
	// Quarantine records that target gave up on r for good, with the
	// reason and the attempts made. The entry is durable no later than any
	// cursor move made after the call.
	Quarantine(target string, r wal.Record, reason string, attempts int) error
}

var _ Log = (*wal.Log)(nil)

// QuarantineLog is what Engine.Redrive needs of a log besides Log: its
// quarantine, changed entry by entry. wal.Log satisfies it. Both methods
// are durable when they return.
type QuarantineLog interface {
	Log
	// ReplaceQuarantine writes items over target's entries of the same
	// sequences (a re-driven event that failed again), skipping entries
	// that are gone (dropped meanwhile), and returns how many it wrote.
	ReplaceQuarantine(target string, items []wal.QuarantineItem) (int, error)
	// DeleteQuarantine removes target's entries of seqs (a re-driven event
	// was delivered) and returns those it removed.
	DeleteQuarantine(target string, seqs []uint64) ([]wal.QuarantineItem, error)
}

var _ QuarantineLog = (*wal.Log)(nil)
