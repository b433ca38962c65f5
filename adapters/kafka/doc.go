// Package kafka produces events to a Kafka topic with an idempotent
// producer. Every event is one record: its key is the object's
// "bucket/object", so all events of one object go to one partition, in
// order; its value is {"EventName":…,"Key":…,"Records":[event]}.
//
// # Guarantees
//
// Send hands the whole batch to the target's one asynchronous producer,
// which several sends in flight share (the kind's window, 4 batches by
// default, never two sharing an object), and returns once every record of
// the batch is acknowledged with acks=all, that is written to every in-sync
// replica. Delivery is at-least-once. The producer is
// idempotent (Kafka 0.11 or later) and keeps one request in flight per
// broker, so its own retries neither duplicate nor reorder records; a batch
// the relay has to send again after a failure may duplicate records the
// brokers had already taken. When a record fails and will be retried, the
// later records of the same object in the batch are retried with it even if
// they were written, so each object's events reach its partition in order
// (possibly one twice). Across objects there is no order, as across
// partitions. A record that can never be written (larger than the
// producer's 1,000,000-byte limit or the topic's max.message.bytes, or an
// invalid record) is quarantined; every other failure is retried.
//
// # Connections
//
// New does no network I/O: the producer is made by the first Send, and made
// again after any failed Send, since a failed idempotent producer's
// sequence state may no longer match the brokers'. The SASL password, when
// empty in the configuration, is read from RELAY_KAFKA_SASL_PASSWORD; it
// never appears in errors or logs. SASL offers PLAIN and SCRAM-SHA-256/512.
package kafka
