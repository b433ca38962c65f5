package consumers

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// Message is one message as a consumer received it: its key (Kafka's record
// key, else nil), its body and its headers (AMQP application properties
// with content-type and message-id, Kafka record headers, MQTT 5 user
// properties with content-type), values as strings. All are valid only
// during the MessageSink call: a sink that keeps them must copy the slices
// (the map is the sink's).
type Message struct {
	Key     []byte
	Body    []byte
	Headers map[string]string
}

// MessageSink receives every message with its headers, from the consumer's
// goroutine. The envelope checks (targettest.RunEnvelope) need the
// headers; a Sink, which gets the body only, is cheaper for bench/.
type MessageSink func(m Message)

// bodies adapts a Sink to a MessageSink.
func bodies(sink Sink) MessageSink {
	if sink == nil {
		return nil
	}
	return func(m Message) { sink(m.Body) }
}

// AddMessage records one message (a copy of it), as Add records its body:
// it is the Collector's MessageSink.
func (c *Collector) AddMessage(m Message) {
	cp := targettest.Message{Body: append([]byte(nil), m.Body...), Headers: m.Headers}
	key := string(m.Key)
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.add(cp.Body)
	c.msgs = append(c.msgs, cp)
	c.keys = append(c.keys, key)
	if first {
		c.distinctMsgs = append(c.distinctMsgs, cp)
	}
}

// Messages returns every message received through AddMessage, duplicates
// included, in arrival order: the shape of
// targettest.EnvelopeHarness.Received.
func (c *Collector) Messages(testing.TB) []targettest.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]targettest.Message(nil), c.msgs...)
}

// DistinctMessages returns each message received through AddMessage whose
// body is new, in order of first arrival: Messages for a suite that must
// not count a redelivery toward the events it waits for.
func (c *Collector) DistinctMessages(testing.TB) []targettest.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]targettest.Message(nil), c.distinctMsgs...)
}

// Keys returns the key of every message received through AddMessage,
// duplicates included, in arrival order.
func (c *Collector) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.keys...)
}
