// Package nats publishes events to a NATS subject, in one of three modes
// chosen by the configuration: core NATS, JetStream, or NATS Streaming
// (STAN). Every event is one message whose body is
// {"EventName":…,"Key":…,"Records":[event]}.
//
// # Core NATS (the default)
//
// Send publishes the batch and then flushes the connection: a flush that
// returns means the server has read every message. Core NATS keeps nothing:
// a message reaches only the subscribers connected at that moment, and
// messages written while the connection is breaking may be lost. Core mode
// is therefore at-most-once, whatever the relay's log does; use JetStream or
// Streaming when events must not be lost.
//
// # JetStream (jetStream.enable)
//
// Send publishes the whole batch asynchronously and then waits for every
// PubAck: an event counts as delivered when the stream has stored it. A
// stream whose subjects cover the subject must exist (the relay does not
// create streams); without one every publish fails with "no responders",
// which is retried, so events wait in the relay's log until the stream is
// created. Delivery is at-least-once: a batch cut by a disconnect is sent
// again from its first unacknowledged event, so a consumer may see
// duplicates but never a gap, and events arrive in log order.
//
// # NATS Streaming (streaming.enable)
//
// With streaming.async, Send publishes the batch with PublishAsync, at most
// streaming.maxPubAcksInflight unacknowledged at a time, and waits for every
// ack; without it each event is published synchronously. An event counts as
// delivered when the streaming server acknowledged it (stored it).
// Delivery is at-least-once and ordered like JetStream. NATS Streaming is
// deprecated upstream; prefer JetStream for new deployments.
//
// # Connections
//
// New does no network I/O. Send connects on first use. Once connected the
// NATS client reconnects by itself, forever; a publish while the connection
// is down fails at once (no reconnect buffer), and the relay retries. A
// streaming connection the server forgot (server restart, missed pings) is
// dropped and made again by the next Send. Credentials left empty in the
// configuration are read from RELAY_NATS_PASSWORD and RELAY_NATS_TOKEN; they
// never appear in errors or logs. Beyond passwords and tokens, nkeySeed
// names a file holding an nkey user seed and credentials a credentials file
// (user JWT and seed) for servers in operator mode; New reads and checks
// them, errors name the file, never its content.
package nats
