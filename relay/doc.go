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
// When a write or fsync of the log fails, the log stops (fail-stop, see
// wal.ErrFailed): Done is closed, Err names the file and the error, and
// Publish and POST /v1/events refuse everything from that moment (503),
// since after a failed fsync the kernel may have dropped pages it could not
// write. What was acknowledged before is in the file. A full disk is not a
// failure: Publish returns an error wrapping wal.ErrNoSpace (POST answers
// 503 with Retry-After) and the relay takes events again once space frees.
//
// # Input
//
// A POST /v1/events body is read once, by an iterative scanner: JSON nested
// deeper than MaxJSONDepth, invalid UTF-8, a routing field of the wrong type
// or twice in a record, and a wildcard used as an event name are refused
// with a *RecordError naming the record (from 0) and the field. Nothing of a
// refused call is logged.
//
// # Watching
//
// Handler's GET /v1/buckets/{bucket}/events streams the events published
// for a bucket as they are logged (NDJSON, or Server-Sent Events), filtered
// as bucket rules filter. It is live only, not durable: a watcher sees
// nothing from before it connected or while it was away. A watcher never
// slows Publish: one that falls DefaultWatchBuffer events behind, or whose
// connection does not take a write within DefaultWatchWriteTimeout, is
// dropped, logged and counted (relay_watchers_dropped_total).
//
// # Status page
//
// Handler's GET / is a server-rendered page of every target's state, lag,
// oldest pending age, last error, lag sparkline (sampled every
// DefaultLagSampleEvery, kept in memory for five minutes) and quarantine,
// with buttons that call the quarantine's retry and drop endpoints. With an
// access token it asks for the token once and keeps a session cookie.
//
// # Targets at runtime
//
// AddTarget, UpdateTarget and RemoveTarget (POST, PUT and DELETE on
// /v1/targets) change targets while the relay runs; what they set is kept
// in the data directory's targets.json and wins over the configuration
// file for the ARNs it names (see runtime_targets.go for the precedence).
// A new target receives the events logged after it; an update goes on
// from the target's cursor; a removal with pending events is refused
// unless forced, and a forced one exports them (fsynced) before releasing
// them. Reload applies a re-read configuration file (the daemon's SIGHUP);
// it never releases pending events.
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
//
// # HTTPS
//
// With Settings.TLS the daemon serves the API over HTTPS with the
// tls.Config of ServerTLSConfig, which an embedder can use too: the
// certificate is read again at a handshake after its files changed (a pair
// that does not load is logged and the previous one served), and with
// TLSSettings.ClientCA every client must present a certificate it signed.
package relay
