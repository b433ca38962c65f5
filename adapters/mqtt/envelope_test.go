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
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// TestCloudEvents: with format "cloudevents" every MQTT 3.1.1 message is a
// structured CloudEvent whose id is the event's id, as Mosquitto
// delivered it to a subscriber.
func TestCloudEvents(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	topic := fmt.Sprintf("minio/test-%d-cloudevents", os.Getpid())
	_, sub := NewSubscriber(t, brokerURL, topic)
	targettest.RunEnvelope(t, targettest.EnvelopeHarness{
		Envelope: targettest.Envelope{CloudEvents: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Broker: brokerURL, Topic: topic, QoS: 1, Format: kit.FormatCloudEvents})
		},
		Received: func(testing.TB) []targettest.Message {
			var out []targettest.Message
			for _, b := range sub.Bodies() {
				out = append(out, targettest.Message{Body: b})
			}
			return out
		},
		Timeout: 30 * time.Second,
	})
}

func TestCloudEventsModeValidation(t *testing.T) {
	c := Config{Broker: "tcp://127.0.0.1:1883", Topic: "t", Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsBinary}
	if err := c.Validate(); err == nil {
		t.Fatal("binary mode on MQTT 3.1.1 validated, want an error on cloudeventsMode")
	}
	c.ProtocolVersion = 5
	if err := c.Validate(); err != nil {
		t.Fatalf("binary mode on MQTT 5: %v", err)
	}
	for _, bad := range []Config{
		{Broker: "tcp://127.0.0.1:1883", Topic: "t", ProtocolVersion: 3},
		{Broker: "ws://127.0.0.1:9001", Topic: "t", ProtocolVersion: 5},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "protocolVersion") {
			t.Errorf("%+v: got %v, want an error on protocolVersion", bad, err)
		}
	}
}
