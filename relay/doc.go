// Package relay is the embeddable bucket notification relay: it routes S3
// event records by bucket rules, appends them durably to the write-ahead
// log, and delivers them to every configured target.
//
// # Guarantees
//
// Publish returns only after every record it was given is in the fsynced
// log; from then on the record is delivered to each target its bucket's
// rules select (at least once, in log order per target) or put in that
// target's quarantine, however long the target is down and across crashes
// and restarts. A target receives a record at most once per matching
// publish even when several rules select it.
//
// When the log is full (Settings.QueueLimit, QueueLimitBytes), Publish
// waits for room until its context ends and then returns an error wrapping
// ErrFull (the same value as wal.ErrFull): the relay pushes back, it never
// drops.
//
// # Embedding
//
//	cfg, err := relay.LoadConfig("relay.json")
//	r, err := relay.Open(cfg, relay.Options{})
//	defer r.Close(ctx) // ctx bounds the wait for sends in flight
//	err = r.Publish(ctx, record)
//
// A storage server that has its own HTTP server mounts r.Handler(); the
// relay daemon (cmd/relay) serves it on Settings.Listen.
package relay
