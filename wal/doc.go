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
// frame, or as a few when it is large (cut at about 512 KiB and compressed
// in parallel, off the goroutine that gathers appends): a bbolt value under the big-endian first sequence of the frame,
// holding a header (records, sequence range, per-target tallies, target
// table, codec) with a CRC-32C of its own, and the records compressed with
// the frame's codec (Options.Compression: s2 by default, zstd or none),
// each with its own sequence and CRC-32C, under a CRC-32C of the payload.
// Opening a log reads headers only. Every frame records its codec, so a
// log reads frames of every codec whatever it writes now. Frames of
// version 1 (earlier logs, consecutive sequences, one checksum) and 2
// (zstd, no codec byte; still what zstd writes) are still read.
//
// A cursor is the next sequence a target has to deliver. Cursor moves and
// quarantine entries are written by the same committer as frames, at most
// CursorSyncInterval after they are made, so a crash may redeliver a
// little (at-least-once) but never skips an event; a quarantine entry is
// durable no later than the cursor move past its record.
//
// # Reading
//
// Read hands out records its caller may keep: their Data is never written
// to or reused by the log, so a reader holds it without copying. Data and
// Key may alias the frame's decompressed records; to keep a reader of a
// few records from holding a whole frame alive, a target that owns less
// than half of a frame's bytes gets its records' data copied into one
// buffer per frame (and its keys copied), so a reader keeps at most about
// twice the bytes of the records it was given. Targets slices may be
// shared between records and are read-only. A reader keeping a key longer
// than the record's data should copy it (strings.Clone).
//
// # Reclamation and isolation
//
// Any frame, not only the oldest, is deleted once every target its
// records are routed to has a committed cursor past it, so a target that
// lags pins only frames holding its own records. A frame pinned only by
// such targets while others passed it is compacted: rewritten in place,
// under the same key, keeping only the records still needed, so a dead
// target holds only its own records; runs of small frames compaction
// leaves are merged into one, so the index stays small. Each commit
// compacts a bounded amount so commit latency stays low. A target with no cursor pins the records
// routed to it; Release, on purpose, exports a target's backlog and lets
// it go.
//
// # Retention and rewind
//
// With a Retention (Options.Retention, SetRetention), a frame every target
// passed is kept instead of deleted while it is younger than the
// retention's age and within its bytes (the newest kept frames first);
// kept frames are reclaimed oldest first, at the commit after they leave
// the retention. Kept records count against each bound they were routed
// to (pending plus kept): when an append would not fit because of them,
// the oldest kept frames are reclaimed first, so retained history never
// holds a producer back. Frames the retention would keep (younger than
// its age and within its bytes of the newest appended) are not compacted.
// Retained reports the range a target can be moved back to: from the
// oldest record of the run of frames, ending at the last sequence, that
// still hold every record they were written with. A frame of records
// routed to no target is not written, so not retained either.
//
// Rewind moves a target's cursor back within that range and Backfill
// routes the range's records to a target added later; both commit the
// cursor before they return, and the records are delivered again
// (at-least-once, on purpose). SeqAt finds the first record appended at
// or after a time. A frame's time is its first record's append time.
//
// # Bounds
//
// Each target has a bound (SetLimit; by default Options.MaxEvents and
// MaxBytes) on what it has pending: the records routed to it that its
// cursor has not passed, counted by whole frames, plus those being
// appended. Bytes are Entry data, key and name, the same measure at append
// and after a restart. An Append that does not fit in a target's bound
// waits for room until its context ends and then fails with ErrFull naming
// the target (policy block, the default); or, with policy drop, the target
// is removed from the records that do not fit, counted by Dropped and
// logged. Records routed only to other targets are never held back: what
// the file holds overall is bounded by the disk, and a full disk is
// answered with ErrNoSpace and retried.
//
// # Damage
//
// A damaged frame costs only the records in it. Open never fails because
// of one: it remembers frames whose header is damaged; Read, Backlogs and
// compaction find those whose payload is. A damaged frame is passed over,
// logged, listed by Damage, and each target that still needed it gets one
// quarantine entry with the reason ("damaged frame: …") and the sequence
// range; it is deleted once every target passed it. bbolt pages that
// cannot be read make Open and OpenReadOnly fail with an error wrapping
// ErrCorrupt: bbolt cannot be trusted with the file then; walinspect
// salvage copies what is intact.
//
// # Fail-stop
//
// A write or fsync error other than a full disk stops the log: every
// writing call fails with ErrFailed from then on, Failed's channel is
// closed and Health returns the error. After a failed fsync the kernel may
// have dropped the dirty pages, so nothing is retried; what was
// acknowledged before is intact when the log is opened again.
//
// # Caveats
//
// Only one process may open a log for writing; bbolt's file lock enforces
// it. A second writer fails with ErrLocked. OpenReadOnly takes a shared
// lock: it fails with ErrLocked while a relay holds the log, and while it
// is open Open waits (up to Options.LockWait, logging that a reader holds
// the log) rather than fail.
package wal
