// Package mqtt publishes events to an MQTT 3.1.1 broker (Mosquitto, EMQX,
// HiveMQ…): one message per event on Config.Topic, body
// {"EventName":…,"Key":…,"Records":[event]} (or a CloudEvent with format
// "cloudevents"), never retained. With Config.ProtocolVersion 5 it speaks
// MQTT 5 through eclipse/paho.golang instead (v5.go): every message carries
// the event's id as the user property event-id, and CloudEvents may travel
// in binary mode as user properties.
//
// # Delivery guarantee
//
// QoS 1 (the seed's example) and QoS 2 are at-least-once: Send publishes the
// whole batch with every message in flight, then waits for the broker's
// acknowledgement of each (PUBACK for QoS 1, PUBCOMP for QoS 2). An item
// counts as delivered only when it was acknowledged; items in flight when
// the connection fails are reported failed and retried, so a message the
// broker took but whose acknowledgement was lost arrives twice. QoS 2 does
// not make it exactly-once across such a retry: the retry is a new message.
//
// At most Config.MaxInFlight messages are awaiting acknowledgement at once.
// For QoS 2 the default is 20, Mosquitto's max_inflight_messages: Mosquitto
// completes the QoS 2 handshake for, and then drops, the messages an MQTT
// 3.1.1 client sends beyond that limit (seen against the real broker; the
// tests cover it). Raise MaxInFlight for QoS 2 only together with the
// broker's limit.
//
// QoS 0 is at-most-once: a message counts as delivered once it is written to
// the connection, and what the client or the broker held when either failed
// is lost. Use it only for events that may be dropped.
//
// What the broker does next is outside the relay: MQTT brokers hand a
// message only to the subscriptions that exist when it arrives, so a
// subscriber that is disconnected without a persistent session (or a broker
// restarted without persistence) misses messages the relay delivered.
//
// # Ordering
//
// Messages are published in order on one connection, and the broker keeps
// that order for each subscriber. The broker acknowledges in order too, so
// when a connection is lost the unacknowledged items are a tail of the
// batch, retried in order on the next connection.
//
// # Concurrency
//
// Send is safe for concurrent use (the kind's default window is 4 batches
// in flight): the sends share one client; each publishes its items in
// order and waits for its own acknowledgements, and Config.MaxInFlight
// bounds the unacknowledged messages of all of them together. The delivery
// engine never has two sends in flight that share a key, so each object's
// events reach subscribers in order. A lost connection fails the
// unacknowledged items of every send in flight; a send whose context ends
// fails its own and leaves the connection to the others.
//
// # Connections
//
// New does no network I/O. Send connects lazily, with a clean session (no
// state is kept on the broker between connections), and after a lost
// connection the next Send connects a new client: paho's own automatic
// reconnection is off so that a failure is seen by the relay, which retries
// with backoff, rather than buffered in the client.
package mqtt
