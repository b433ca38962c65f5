package mqtt

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// Subscriber5 is an MQTT 5 subscriber (paho.golang) that keeps every
// message with its user properties and content type, as headers.
type Subscriber5 struct {
	mu   sync.Mutex
	msgs []targettest.Message
}

// NewSubscriber5 subscribes to topic at QoS 1 on the broker at addr
// (host:port) until the test ends.
func NewSubscriber5(t testing.TB, addr, topic string) *Subscriber5 {
	t.Helper()
	s := &Subscriber5{}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho5.NewClient(paho5.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			h := map[string]string{}
			if p := pr.Packet.Properties; p != nil {
				for _, u := range p.User {
					h[u.Key] = u.Value
				}
				if p.ContentType != "" {
					h["content-type"] = p.ContentType
				}
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, targettest.Message{Body: append([]byte(nil), pr.Packet.Payload...), Headers: h})
			s.mu.Unlock()
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho5.Connect{ClientID: fmt.Sprintf("bucketrelay-test-sub5-%d-%d", os.Getpid(), time.Now().UnixNano()), KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho5.Disconnect{}); conn.Close() })
	return s
}

// Received returns every message so far, in arrival order.
func (s *Subscriber5) Received(testing.TB) []targettest.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]targettest.Message(nil), s.msgs...)
}

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
			sub := NewSubscriber5(t, brokerAddr, topic)
			targettest.RunEnvelope(t, targettest.EnvelopeHarness{
				Envelope: c.env,
				New: func(t testing.TB) delivery.Target {
					cfg := c.cfg
					cfg.Enable, cfg.Broker, cfg.Topic, cfg.QoS, cfg.ProtocolVersion = true, brokerURL, topic, 1, 5
					return newTarget(t, cfg)
				},
				Received: sub.Received,
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
