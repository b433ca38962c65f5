// Package amqp publishes events to an AMQP 0-9-1 broker (RabbitMQ): one
// message per event, body {"EventName":…,"Key":…,"Records":[event]},
// content type application/json, to Config.Exchange with Config.RoutingKey.
//
// # Delivery guarantee
//
// At-least-once with publisher confirms (the default): Send publishes the
// whole batch on one channel in confirm mode with every confirmation
// outstanding, then waits for them all. An item counts as delivered only
// when the broker acknowledged it (basic.ack). A negative acknowledgement,
// a lost connection before the ack, or, with mandatory set, a message the
// broker returned because no queue is bound, fails that item and the
// delivery engine retries it. A returned message is retried rather than
// dropped so events are not lost while no consumer queue is bound; a target
// whose exchange never gets a queue therefore stays backlogged (its pending
// count grows), which is the signal to fix the topology.
//
// With publisherConfirms set to false, an item counts as delivered once it
// is written to the connection: events in the client's or the broker's
// buffers when either fails are lost (at-most-once on failure), in exchange
// for not waiting a round trip.
//
// What the broker does with an acknowledged message depends on the topology
// the user chose: a transient message (deliveryMode 0 or 1) or a non-durable
// queue does not survive a broker restart. For events that must survive the
// broker, use deliveryMode 2, a durable exchange and durable queues.
//
// # Ordering
//
// Items are published in order on one channel, so a queue receives them in
// order. A retried item (after a nack or a return) is published again after
// the items that followed it were acknowledged, so order is only kept
// between failures. A redelivery after a lost ack produces a duplicate;
// every message carries the event's log sequence number as its message-id
// so consumers can drop duplicates.
//
// # Concurrency
//
// Send is safe for concurrent use (the kind's default window is 4 batches
// in flight): the sends share one connection and one channel; each
// publishes its items in order and waits for its own confirmations, and
// returned messages are matched to their send by message-id. The delivery
// engine never has two sends in flight that share a key, so each object's
// events reach the queue in order. A channel or connection failure fails
// the unconfirmed items of every send in flight.
//
// # Connections
//
// New does no network I/O. Send connects lazily, declares the exchange once
// per connection (not per event) and reconnects by itself on the next Send
// after the broker closed the connection or the channel (a broker restart,
// a declaration the broker refused).
//
// The immediate flag is parsed for compatibility with the seed's
// configuration, but RabbitMQ 3.0 and later do not implement it: the broker
// closes the connection (540 NOT_IMPLEMENTED) on the first publish with it,
// so Validate rejects immediate: true.
package amqp
