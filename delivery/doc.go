// Package delivery moves events from the write-ahead log to targets.
//
// Each target gets its own drain loop with its own cursor over the log. A
// loop is woken by appends (no polling delay while the target keeps up),
// reads a window of the records routed to its target, sends it, and moves
// its cursor past the window only once every item in it is delivered or
// quarantined. A target that is down, at startup or later, is retried with
// exponential backoff and jitter (never above Options.MaxBackoff), forever
// by default, and never delays another target: loops share nothing but the
// log.
//
// # Errors
//
// A target's Send classifies its failures. An error wrapped with Permanent
// means the items it covers will never succeed (the target rejected them):
// the loop moves them to the target's quarantine in the log with the error
// and the attempt count, and goes on. Any other error is retried; with
// Options.MaxAttempts an item is quarantined after that many failed sends,
// counted per record however often its window is read again. A
// *BatchError reports item by item which items failed, so one bad event
// costs only itself. An item that failed only because an earlier one did
// (ErrEarlierFailed) is quarantined with the earlier item's error, the
// real cause. An error wrapped with Gone (the destination says it no
// longer exists: HTTP 410) pauses the target as Engine.Pause does, with
// that error as Stats.LastError: the items it covers are held, not
// counted as attempts nor quarantined, and sent after Engine.Resume; the
// items of the send the target took are not sent again. An error wrapped
// with RetryAfter (HTTP 429 or 503 with Retry-After) is retried after the
// wait it carries, capped by MaxRetryAfter, instead of the backoff.
//
// # Policies, pipelines and lanes
//
// A Spec's Policy overrides the engine's MaxAttempts for one target, and
// adds MaxAge (an event appended longer ago is quarantined with a reason
// wrapping ErrExpired instead of being sent or retried) and RateLimit
// (events per second, a token bucket). With Policy.InFlight above 1
// several batches are in flight at once: their answers are taken in log
// order, the cursor never passes an unacknowledged item, a failed batch is
// retried alone and everything sent behind it is sent again (at least
// once; Stats.Resent), and a batch that shares a key with one in flight
// waits for it. The pipeline does not empty at a window's end: the next
// window's batches go while the last ones of the window before are still
// awaited, and the cursor moves past each window once it and every window
// before it are acknowledged. With Policy.Lanes above 1 a window is split
// by key (event.LaneOf) into lanes delivered side by side, each in order
// (and each pipelined with InFlight above 1); the cursor moves past the
// window once every lane is done, and the next window starts then. Both
// call Send concurrently, so they are for targets whose Send allows it.
//
// # Memory
//
// A loop holds at most two windows: the one being sent and the next, read
// ahead (or, in a pipeline, the one whose last batches are awaited and
// the next, being sent). Each is bounded by Options.WindowBytes (64 MiB
// by default) as well as by its count limits, and holds its own copies of
// the records, never the log's decompressed frames.
//
// # Namespace targets
//
// A namespace-format target (rows mirror the objects of a bucket) is given
// coalesced batches: within the window the loop reads, which spans the
// backlog up to Options.CoalesceEvents records, CoalesceKeys keys and
// WindowBytes of kept items, only the newest item per key is sent, in log
// order, and items that do not change an object's state (reads) are
// dropped. A superseded item is let go as soon as its key's next event is
// read. A window that fails before any write is read again after the
// backoff, so events that arrive during an outage join it. The store ends
// in the state replaying every event in order would give, with at most one
// write per key per window.
//
// # Status and logging
//
// Engine.Stats reports each target's state (StateUp, StateDown,
// StateBackingOff), its last error with its time, and when it retries. A
// failure is logged when it starts; while it goes on, one summary line per
// Options.RepeatLogInterval (30 s by default) gives the count; when the
// target takes a send again, "target is back after N failures over D" is
// logged once. Quarantining an event does not make a target down.
//
// # Re-drive, pause and probes
//
// Engine.Redrive puts quarantined events back into a target's delivery:
// they are sent in log order before the loop's next window, removed from
// the quarantine once delivered (Stats.Redriven), or put back with the new
// reason if they fail again. The log must implement QuarantineLog.
// Engine.Pause holds a target (StatePaused): its events go on being logged
// and are sent, in order, after Engine.Resume; a batch already being
// written is finished first, so a pause sends nothing twice. A target that
// implements Prober is probed in the background when Run starts and is
// reported down at once if it cannot be reached, until a probe or a send
// succeeds; Run never waits for a probe.
//
// # The log
//
// The engine reads and writes the log through the Log interface. A damaged
// record met while reading (an error wrapping wal.ErrCorrupt) makes the
// target down and is retried with backoff. Any other failure of the log
// (wal.ErrFailed after a storage error, wal.ErrClosed when the log is
// closed under the engine, a cursor move or quarantine entry refused) stops
// every loop, and Engine.Run returns it: a target must never move past an
// event its log did not record.
package delivery
