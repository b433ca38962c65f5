package consumers

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
)

// MQTT5 is an MQTT 5 subscriber (paho.golang) at QoS 1 that hands each
// message with its user properties and content type as headers. Unlike
// MQTT it does not reconnect: it serves the envelope checks, which stop no
// broker.
type MQTT5 struct {
	conn   net.Conn
	client *paho5.Client
}

// StartMQTT5 connects to the broker at addr (host:port) and returns once
// topic is subscribed (or after 10 s, with an error).
func StartMQTT5(addr, topic string, sink MessageSink) (*MQTT5, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("consumers: mqtt5: %w", err)
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
			if sink != nil {
				sink(Message{Body: pr.Packet.Payload, Headers: h})
			}
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := fmt.Sprintf("bucketrelay-sub5-%d-%d", os.Getpid(), time.Now().UnixNano())
	if _, err := c.Connect(ctx, &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("consumers: mqtt5: connect: %w", err)
	}
	if _, err := c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil {
		_ = c.Disconnect(&paho5.Disconnect{})
		conn.Close()
		return nil, fmt.Errorf("consumers: mqtt5: subscribe %s: %w", topic, err)
	}
	return &MQTT5{conn: conn, client: c}, nil
}

// NewMQTT5 is StartMQTT5 for a test: it fails t on error and disconnects
// when the test ends.
func NewMQTT5(t testing.TB, addr, topic string, sink MessageSink) *MQTT5 {
	t.Helper()
	s, err := StartMQTT5(addr, topic, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close disconnects.
func (s *MQTT5) Close() {
	_ = s.client.Disconnect(&paho5.Disconnect{})
	s.conn.Close()
}
