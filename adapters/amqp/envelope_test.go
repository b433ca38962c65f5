package amqp

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// TestEnvelope: every message's message-id is the event's id, and with
// format "cloudevents" the message is a CloudEvent of the AMQP binding:
// cloudEvents_* application properties (binary) or structured.
func TestEnvelope(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	for _, c := range []struct {
		name string
		cfg  Config
		env  targettest.Envelope
	}{
		{"plain", Config{}, targettest.Envelope{IDHeader: "message-id"}},
		{"cloudevents binary", Config{Format: kit.FormatCloudEvents}, targettest.Envelope{IDHeader: "message-id", CloudEvents: true, Binding: &cloudevent.AMQP}},
		{"cloudevents structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}, targettest.Envelope{IDHeader: "message-id", CloudEvents: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("bucketrelay-envelope-%s-%d", strings.ReplaceAll(c.name, " ", "-"), os.Getpid())
			cons := NewConsumer(t, brokerURL, name, name)
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := testConfig(name)
					cfg.Format, cfg.CloudEventsMode = c.cfg.Format, c.cfg.CloudEventsMode
					return newTarget(t, cfg)
				},
				Received: cons.DistinctMessages,
			})
			if c.env.CloudEvents {
				want := cloudevent.DataContentType
				if c.env.Binding == nil {
					want = cloudevent.StructuredContentType
				}
				for _, m := range cons.DistinctMessages(t) {
					if m.Headers["content-type"] != want {
						t.Fatalf("content-type %q, want %q", m.Headers["content-type"], want)
					}
				}
			}
		})
	}
}
