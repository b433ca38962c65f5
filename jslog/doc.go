// Package jslog is the relay's log on a replicated NATS JetStream stream:
// the second implementation of delivery.Log beside the embedded bbolt log
// in wal/, for running several relay processes as one cluster. Every
// process opens the same stream; any of them appends, each sees all
// records, and cursors, quarantine and leases live in JetStream too, so a
// process can die without losing an acknowledged event.
//
// # Guarantees
//
// Append returns nil only after the stream's PubAck: the stream leader
// acknowledges once the message is committed by its Raft group, that is
// stored by a majority of the replicas (2 of 3 with R3). Concurrent
// appenders share one message (group commit): a frame of their records,
// compressed with Options.Compression (s2 by default; each message records
// its codec, so every one reads whatever the setting is now), with a
// Nats-Msg-Id, so a publish retried after a timeout is
// stored once (within the stream's duplicate window, 2 minutes). A
// process has at most Options.MaxInFlight messages unacknowledged; those
// hold appends that were concurrent, whose order is not defined, so a
// retried message landing after a later one reorders nothing a client
// could have ordered: an Append that returned before another was called
// is always stored before it.
//
// What "stored" means depends on a server setting a client cannot see,
// JetStream's sync_interval (Open logs this at start):
//
//   - sync_interval: always. Every server fsyncs before it acknowledges a
//     write, so an acknowledged record is on the disks of a majority of the
//     replicas: it survives kill -9 of any process, the loss of one machine
//     of three, and a power cut of the whole cluster.
//   - the default (2m). A write is acknowledged from the page cache and
//     fsynced within 2 minutes. An acknowledged record survives kill -9 of
//     any process and the loss of one machine of three, but a coordinated
//     power loss of a majority can lose the last 2 minutes: Jepsen's
//     analysis of NATS 2.12.1 lost 131,418 of 930,005 acknowledged
//     messages that way. Use sync_interval: always for the relay's
//     promise; scripts/cluster.sh does.
//
// Open checks what the client can see and logs a warning (see Warnings)
// when the stream cannot keep the promise: fewer than 3 replicas, memory
// storage, discard old, no limits, a short duplicate window, retention
// other than limits, replicas offline.
//
// # Sequences
//
// A record's sequence is its message's stream sequence shifted left 16
// bits plus its index in the message: seq = streamSeq<<16 | index (see
// Seq and SplitSeq). Sequences are unique across processes and grow with
// the stream, with gaps between messages; a message holds at most 65,536
// records.
//
// # Bounds and back-pressure
//
// The stream is created with MaxBytes (compressed frames) and MaxMsgs
// (group commits), discard new. A full stream refuses the publish; Append
// retries until its context ends and returns an error wrapping
// wal.ErrFull, never dropping a record. A stream without quorum (two of
// three servers down) acknowledges nothing; Append retries until its
// context ends and returns an error wrapping ErrUnavailable. The records
// of an Append that failed may still have been stored (the publish was in
// flight): a retry may duplicate them, never lose them. When the stream
// leader's server dies, appends stall for JetStream's Raft election
// (4 to 9 s in nats-server 2.15, not configurable) and then continue.
//
// # Cursors, quarantine, reclamation
//
// Cursors are in the KV bucket Stream_cursors (key: base64url of the
// target or lane ID, value: the decimal sequence), written at most
// CursorSyncInterval after Advance by compare-and-set, so a cursor never
// moves back even if two processes write it; after a crash a target may
// redeliver a little (at-least-once). Quarantine entries are JSON
// wal.QuarantineEntry values in Stream_quarantine (key: target, then the
// sequence), written before any later cursor move. Every process watches
// the cursor bucket. Once every target (or every lane of a target) routed
// in the messages at the head of the stream has a committed cursor past
// them, a process purges them.
//
// Every process follows the stream headers-only (an ordered consumer): two
// headers per message give its record count and per-target counts, so
// Routed, Appended and reading skip messages without fetching them. Reads
// fetch message bodies from the stream leader and keep a bounded cache.
//
// # Lanes and leases
//
// LaneID names lane i of n of a target; Read passes only the records whose
// key hashes to the lane (LaneOf), and each lane has its own cursor and
// quarantine. Leases (a KV bucket whose entries expire TTL after their last
// write) give each lane to one process: Hold runs the lane's drain while
// the process renews the lease, stops it 2/3 TTL after the last renewal
// that got through, and another process takes the lane when the entry
// expires, starting from the committed cursor. Spread holds a fair share of
// a set of leases (ceil(lanes/processes), processes counted by member
// entries that expire the same way), so a busy target's lanes spread over
// the relays and move when one joins or dies.
//
// A server cut off from the others (a partition) acknowledges nothing.
// When it rejoins it may answer reads for a few seconds with the stream as
// it was: a process following the stream through it sees new records late,
// never loses them. Append stops waiting for a lagging index, and a stalled
// index consumer is restarted within about 6 s.
//
// # Caveats
//
// Only this package's prefix purge may remove messages: deleting messages
// from the stream by hand makes readers wait for them. The stream's
// subject is Stream.records; other publishers must not use it. A lane's
// Routed count is the whole target's (the index does not hold keys).
package jslog
