package mqtt

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

// TestV5Envelope: with protocolVersion 5 every message carries the event's
// id as the user property event-id, and with format "cloudevents" is a
// CloudEvent of the MQTT binding, binary (attributes as user properties)
// or structured, as Mosquitto delivered it to an MQTT 5 subscriber.
func TestV5Envelope(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	for _, c := range []struct {
		name string
		cfg  Config
		env  targettest.Envelope
	}{
		{"plain", Config{}, targettest.Envelope{IDHeader: EventIDProperty}},
		{"cloudevents binary", Config{Format: kit.FormatCloudEvents}, targettest.Envelope{IDHeader: EventIDProperty, CloudEvents: true, Binding: &cloudevent.MQTT}},
		{"cloudevents structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}, targettest.Envelope{IDHeader: EventIDProperty, CloudEvents: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := fmt.Sprintf("minio/test-%d-v5-%s", os.Getpid(), strings.ReplaceAll(c.name, " ", "-"))
			sub := new(consumers.Collector)
			consumers.NewMQTT5(t, brokerAddr, topic, sub.AddMessage)
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := c.cfg
					cfg.Enable, cfg.Broker, cfg.Topic, cfg.QoS, cfg.ProtocolVersion = true, brokerURL, topic, 1, 5
					return newTarget(t, cfg)
				},
				Received: sub.Messages,
				Timeout:  30 * time.Second,
			})
		})
	}
}

// TestV5Conformance runs the suite with protocolVersion 5 at QoS 1,
// through the gate so that the outage subtests cut the connection.
func TestV5Conformance(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	targettest.Run(t, harnessWith(t, 1, func(c *Config) { c.ProtocolVersion = 5 }))
}
