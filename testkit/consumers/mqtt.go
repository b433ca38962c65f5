package consumers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTTConfig says what an MQTT subscriber subscribes to.
type MQTTConfig struct {
	// Broker is the broker's URL, tcp://host:port. Required.
	Broker string
	// Topic is the topic filter, subscribed at QoS 1. Required.
	Topic string
	// Unordered lets paho run the Sink on a goroutine per message (bench/:
	// cheaper). Zero value: messages reach the Sink one by one, in order.
	Unordered bool
}

// MQTT receives what is published on a topic, as the seed's paho example
// does, at QoS 1, and resubscribes after the broker restarts.
type MQTT struct {
	sink   Sink
	count  atomic.Int64
	subbed chan struct{} // receives after each successful subscription
	client paho.Client
}

// StartMQTT connects and returns once the subscription is made (or after
// 30 s, with an error).
func StartMQTT(cfg MQTTConfig, sink Sink) (*MQTT, error) {
	if cfg.Broker == "" || cfg.Topic == "" {
		return nil, errors.New("consumers: MQTTConfig needs Broker and Topic")
	}
	s := &MQTT{sink: sink, subbed: make(chan struct{}, 16)}
	opts := paho.NewClientOptions().AddBroker(cfg.Broker).
		SetClientID(fmt.Sprintf("bucketrelay-sub-%d-%d", os.Getpid(), time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOrderMatters(!cfg.Unordered)
	opts.SetOnConnectHandler(func(c paho.Client) {
		go func() {
			tok := c.Subscribe(cfg.Topic, 1, func(_ paho.Client, m paho.Message) {
				s.count.Add(1)
				if s.sink != nil {
					s.sink(m.Payload())
				}
			})
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				s.subbed <- struct{}{}
			}
		}()
	})
	s.client = paho.NewClient(opts)
	s.client.Connect()
	if err := s.WaitSubscribed(30 * time.Second); err != nil {
		s.client.Disconnect(0)
		return nil, err
	}
	return s, nil
}

// NewMQTT is StartMQTT for a test: it fails t on error and disconnects
// when the test ends.
func NewMQTT(t testing.TB, cfg MQTTConfig, sink Sink) *MQTT {
	t.Helper()
	s, err := StartMQTT(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// WaitSubscribed waits up to d for the next successful subscription (the
// one after a broker restart, once ForgetSubscriptions was called).
func (s *MQTT) WaitSubscribed(d time.Duration) error {
	select {
	case <-s.subbed:
		return nil
	case <-time.After(d):
		return fmt.Errorf("consumers: mqtt: not subscribed after %v", d)
	}
}

// RequireSubscribed is WaitSubscribed(30 s) for a test: it fails t if no
// subscription is made.
func (s *MQTT) RequireSubscribed(t testing.TB) {
	t.Helper()
	if err := s.WaitSubscribed(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// ForgetSubscriptions drops the notices of past subscriptions, so that the
// next WaitSubscribed waits for a new one: call it before stopping the
// broker.
func (s *MQTT) ForgetSubscriptions() {
	for len(s.subbed) > 0 {
		<-s.subbed
	}
}

// Count returns how many messages the subscriber received, redeliveries
// included.
func (s *MQTT) Count() int64 { return s.count.Load() }

// Close disconnects.
func (s *MQTT) Close() { s.client.Disconnect(100) }

// Gate is a loopback TCP proxy to a broker that can be shut. An MQTT broker
// only hands a message to the subscriptions that exist when it arrives, and
// Mosquitto keeps no session across a restart, so after a restart the relay
// must not publish before the subscriber has subscribed again: the relay
// connects through the gate, which is opened only then. The broker itself
// is really stopped and started.
type Gate struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	open    bool
	conns   map[net.Conn]bool
	stopped chan struct{}
	close   sync.Once
}

// StartGate listens on a loopback port and forwards each connection to
// target (host:port) while the gate is open. It starts open.
func StartGate(target string) (*Gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("consumers: gate: %w", err)
	}
	g := &Gate{ln: ln, target: target, open: true, conns: map[net.Conn]bool{}, stopped: make(chan struct{})}
	go g.serve()
	return g, nil
}

// NewGate is StartGate for a test: it fails t on error and closes the gate
// when the test ends.
func NewGate(t testing.TB, target string) *Gate {
	t.Helper()
	g, err := StartGate(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// URL is the broker URL through the gate, tcp://127.0.0.1:port.
func (g *Gate) URL() string { return "tcp://" + g.ln.Addr().String() }

// SetOpen opens or closes the gate; closing it cuts every connection.
func (g *Gate) SetOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for c := range g.conns {
			c.Close()
		}
	}
}

// Close stops listening and cuts every connection.
func (g *Gate) Close() {
	g.close.Do(func() {
		g.ln.Close()
		g.SetOpen(false)
		<-g.stopped
	})
}

func (g *Gate) serve() {
	defer close(g.stopped)
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		open := g.open
		if open {
			g.conns[c] = true
		}
		g.mu.Unlock()
		if !open {
			c.Close()
			continue
		}
		go g.pipe(c)
	}
}

func (g *Gate) pipe(c net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", g.target, 2*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}
