package main

// Scenario "mqtt": the MQTT target at QoS 1 against the Mosquitto of
// scripts/services.sh (127.0.0.1:1883), beside a direct paho client
// publishing the same bodies at QoS 1 with every message in flight, and the
// drain after the broker was stopped (scripts/services.sh stop mosquitto)
// and started again. It uses the NATS/Kafka harness (nkRun).
//
// A QoS 1 subscriber runs for the whole scenario. An MQTT broker hands a
// message only to the subscriptions that exist when it arrives, and
// Mosquitto keeps no session across a restart, so the publishers (the
// relay's target and the direct client alike) reach the broker through a
// loopback gate that is opened after a restart only once the subscriber has
// subscribed again; otherwise the outage's "lost" would count the
// subscriber's absence, not the relay's.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	mqttadapter "github.com/bucketrelay/bucketrelay/adapters/mqtt"
	"github.com/bucketrelay/bucketrelay/delivery"
)

func init() { register("mqtt", runMQTT) }

const (
	mqttBenchAddr  = "127.0.0.1:1883"
	mqttBenchTopic = "minio/bench"
)

// mqttGate is a loopback TCP proxy to the broker that can be shut.
type mqttGate struct {
	ln    net.Listener
	mu    sync.Mutex
	open  bool
	conns map[net.Conn]bool
}

func newMQTTGate() (*mqttGate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &mqttGate{ln: ln, open: true, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
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
	}()
	return g, nil
}

func (g *mqttGate) url() string { return "tcp://" + g.ln.Addr().String() }

func (g *mqttGate) setOpen(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = open
	if !open {
		for c := range g.conns {
			c.Close()
		}
	}
}

func (g *mqttGate) close() { g.ln.Close(); g.setOpen(false) }

func (g *mqttGate) pipe(c net.Conn) {
	defer func() {
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", mqttBenchAddr, 2*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// mqttBenchSubscriber subscribes at QoS 1 for the whole scenario and
// resubscribes after the broker restarts.
type mqttBenchSubscriber struct {
	client   paho.Client
	seen     atomic.Pointer[nkSeen]
	received atomic.Int64
	subbed   chan struct{}
}

func newMQTTBenchSubscriber() (*mqttBenchSubscriber, error) {
	s := &mqttBenchSubscriber{subbed: make(chan struct{}, 16)}
	opts := paho.NewClientOptions().AddBroker("tcp://" + mqttBenchAddr).
		SetClientID(fmt.Sprintf("bucketrelay-bench-sub-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOrderMatters(false)
	opts.SetOnConnectHandler(func(c paho.Client) {
		go func() {
			tok := c.Subscribe(mqttBenchTopic, 1, func(_ paho.Client, m paho.Message) {
				s.received.Add(1)
				if seen := s.seen.Load(); seen != nil {
					seen.add(m.Payload())
				}
			})
			if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
				s.subbed <- struct{}{}
			}
		}()
	})
	s.client = paho.NewClient(opts)
	s.client.Connect()
	if err := s.waitSubscribed(30 * time.Second); err != nil {
		s.client.Disconnect(0)
		return nil, err
	}
	return s, nil
}

func (s *mqttBenchSubscriber) waitSubscribed(d time.Duration) error {
	select {
	case <-s.subbed:
		return nil
	case <-time.After(d):
		return errors.New("subscriber did not subscribe")
	}
}

// mqttDirect publishes bodies (cycling) at QoS 1 in batches of nkBatch with
// every message in flight, waits for every PUBACK, and returns the rate.
func mqttDirect(broker string) func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
	return func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
		opts := paho.NewClientOptions().AddBroker(broker).
			SetClientID(fmt.Sprintf("bucketrelay-bench-direct-%d", time.Now().UnixNano())).
			SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return 0, fmt.Errorf("direct client: connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		toks := make([]paho.Token, nkBatch)
		n, start := 0, time.Now()
		for time.Since(start) < d && ctx.Err() == nil {
			for i := range toks {
				toks[i] = c.Publish(mqttBenchTopic, 1, false, bodies[(n+i)%len(bodies)])
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					return 0, fmt.Errorf("direct client: publish: %v", tok.Error())
				}
			}
			n += len(toks)
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
}

func mosquittoVersion() string {
	out, err := exec.Command("mosquitto", "-h").CombinedOutput()
	if err != nil && len(out) == 0 {
		return "(version unknown)"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// mqttStop stops Mosquitto and waits until its process is gone:
// services.sh start skips starting one while pgrep still sees the old
// process, which lingers as a zombie for about a second after pkill.
func mqttStop() error {
	if err := nkServices("stop", "mosquitto"); err != nil {
		return err
	}
	end := time.Now().Add(20 * time.Second)
	for exec.Command("pgrep", "-x", "mosquitto").Run() == nil {
		if time.Now().After(end) {
			return errors.New("mosquitto's process did not go away")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func runMQTT(ctx context.Context, o Options) (Result, error) {
	if c, err := net.DialTimeout("tcp", mqttBenchAddr, 2*time.Second); err != nil {
		return Result{}, fmt.Errorf("mosquitto at %s (scripts/services.sh start mosquitto): %w", mqttBenchAddr, err)
	} else {
		c.Close()
	}
	gate, err := newMQTTGate()
	if err != nil {
		return Result{}, err
	}
	defer gate.close()
	sub, err := newMQTTBenchSubscriber()
	if err != nil {
		return Result{}, err
	}
	defer sub.client.Disconnect(100)
	cfg := mqttadapter.Config{Enable: true, Broker: gate.url(), Topic: mqttBenchTopic, QoS: 1}
	return nkRun(ctx, o, nkSpec{
		newTarget: func() (delivery.Target, error) { return mqttadapter.New(cfg, nkQuiet()) },
		direct:    mqttDirect(gate.url()),
		consume: func(seen *nkSeen) (func(), error) {
			sub.seen.Store(seen)
			return func() { sub.seen.Store(nil) }, nil
		},
		stop: func() error {
			gate.setOpen(false)
			for len(sub.subbed) > 0 {
				<-sub.subbed
			}
			return mqttStop()
		},
		start: func() error {
			if err := nkServices("start", "mosquitto"); err != nil {
				return err
			}
			if err := sub.waitSubscribed(30 * time.Second); err != nil {
				return err
			}
			gate.setOpen(true)
			return nil
		},
		goal: "≥ 10000",
		notes: []string{
			mosquittoVersion() + " from scripts/services.sh on loopback; QoS 1, a QoS 1 subscriber throughout",
			"direct client: paho Publish × 1000 at QoS 1, then wait for every PUBACK; both publishers go through the same loopback gate (see bench/mqtt.go)",
			"outage: a real broker stop/start (scripts/services.sh stop/start mosquitto); the gate opens once the subscriber has resubscribed",
		},
	})
}
