// Package delivery moves events from the write-ahead log to targets.
//
// Each target gets its own drain loop with its own cursor over the log. A
// loop is woken by appends (no polling delay while the target keeps up),
// reads a batch of the records routed to its target, sends it, and moves its
// cursor past the batch only once every item in it is delivered or
// quarantined. A target that is down, at startup or later, is retried with
// exponential backoff and jitter, forever by default, and never delays
// another target: loops share nothing but the log.
//
// # Errors
//
// A target's Send classifies its failures. An error wrapped with Permanent
// means the items it covers will never succeed (the target rejected them):
// the loop moves them to the target's quarantine in the log with the error
// and the attempt count, and goes on. Any other error is retried. A
// *BatchError reports item by item which items failed, so one bad event
// costs only itself.
//
// # Namespace targets
//
// A namespace-format target (rows mirror the objects of a bucket) is given
// coalesced batches: within the window the loop reads, which spans the
// whole backlog up to Options.CoalesceEvents records, only the newest item
// per key is sent, in log order, and items that do not change an object's
// state (reads) are dropped. The store ends in the state replaying every
// event in order would give, with at most one write per key.
package delivery
