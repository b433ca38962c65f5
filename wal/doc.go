// Package wal is the relay's write-ahead log: an append-only sequence of
// event records in a bbolt file, with one delivery cursor per target and a
// quarantine per target for events that can never be delivered.
//
// # Guarantees
//
// Append returns only after its records are in a committed, fsynced bbolt
// transaction. Concurrent appenders share one transaction (group commit):
// while one commit is being synced the next one is being built, so
// throughput grows with concurrency while each caller still waits for its
// own fsync.
//
// Records are numbered from 1 by a sequence that never goes back, even
// across restarts and reclamation. Each group commit is stored as one
// frame: a bbolt value under the big-endian first sequence of the frame,
// holding the frame's target table uncompressed and its records compressed
// with zstd. The frame carries a CRC-32C of its bytes and every record a
// CRC-32C of its own; a read that finds a mismatch returns ErrCorrupt.
//
// A cursor is the next sequence a target has to deliver. Cursor moves and
// quarantine entries are written by the same committer as frames, at most
// CursorSyncInterval after they are made, so a crash may redeliver a
// little (at-least-once) but never skips an event. A frame is reclaimed
// (deleted) once every target any of its records is routed to has moved
// past it.
//
// # Bounds
//
// The log holds at most MaxEvents records and MaxBytes bytes of record data
// (uncompressed). An Append that does not fit waits for reclamation until
// its context ends, and then returns ErrFull: the log pushes back on
// producers, it never drops.
//
// # Caveats
//
// Only one process may open a log for writing; bbolt's file lock enforces
// it. OpenReadOnly takes a shared lock, so it fails with ErrLocked while a
// relay holds the log.
package wal
