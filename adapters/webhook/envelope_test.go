package webhook

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

func messages(rcv *webhookrecv.Receiver) []targettest.Message {
	var out []targettest.Message
	for _, m := range rcv.Messages() {
		h := map[string]string{}
		for k := range m.Header {
			h[k] = m.Header.Get(k)
		}
		out = append(out, targettest.Message{Body: m.Body, Headers: h})
	}
	return out
}

// TestEnvelope: every POST carries webhook-id, and with format
// "cloudevents" is a CloudEvent in binary (default) or structured mode.
func TestEnvelope(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		env  targettest.Envelope
	}{
		{"plain", Config{}, targettest.Envelope{IDHeader: "webhook-id"}},
		{"cloudevents binary", Config{Format: kit.FormatCloudEvents}, targettest.Envelope{IDHeader: "webhook-id", CloudEvents: true, Binding: &cloudevent.HTTP}},
		{"cloudevents structured", Config{Format: kit.FormatCloudEvents, CloudEventsMode: kit.CloudEventsStructured}, targettest.Envelope{IDHeader: "webhook-id", CloudEvents: true}},
		{"cloudevents signed", Config{Format: kit.FormatCloudEvents, SigningSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, targettest.Envelope{IDHeader: "webhook-id", CloudEvents: true, Binding: &cloudevent.HTTP}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rcv := webhookrecv.New(t, "")
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := c.cfg
					cfg.Enable, cfg.Endpoint = true, rcv.URL()
					tg, err := New(cfg, nil)
					if err != nil {
						t.Fatal(err)
					}
					return tg
				},
				Received: func(testing.TB) []targettest.Message { return messages(rcv) },
			})
		})
	}
}
