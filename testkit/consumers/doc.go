// Package consumers holds the broker consumers, subscribers and test
// servers that the adapters' tests and bench/ both use: an AMQP queue bound
// to a fanout exchange, an MQTT subscriber and a loopback gate in front of
// the broker, NATS core, JetStream and Streaming subscribers, an embedded
// NATS Streaming server, and a Kafka (kfake) broker with a kgo consumer.
//
// Every consumer hands each message body to a Sink. Collector is the Sink
// tests use: it keeps the bodies and counts redeliveries. bench/ passes its
// own Sink that only marks event ids, so a long run holds no bodies. The
// envelope checks need each message's headers: the AMQP, Kafka and MQTT 5
// consumers also hand whole Messages to a MessageSink (the XMessages
// constructors, and NewMQTT5), which Collector.AddMessage keeps.
//
// Each helper has two constructors: StartX returns an error and a Close
// method (for bench/, which has no testing.TB), and NewX takes testing.TB,
// fails the test on error and closes itself in t.Cleanup.
//
// Guarantees: a constructor returns only once the consumer is bound or
// subscribed, so nothing published afterwards is missed by a healthy
// broker; the AMQP consumer, the MQTT subscriber, the JetStream consumer
// and the Kafka consumer survive a broker restart and keep consuming; a
// core NATS subscription (at most once) and a Streaming subscription do
// not (StanServer resubscribes on Start).
package consumers
