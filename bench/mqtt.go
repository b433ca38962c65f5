package main

// Scenario "mqtt": the MQTT target at QoS 1 against the Mosquitto of
// scripts/services.sh (127.0.0.1:1883), beside a direct paho client
// publishing the same bodies at QoS 1 with as many batches unacknowledged
// as the relay has in flight (and, as an extra row, one batch at a time),
// and the drain after the broker was stopped (scripts/services.sh stop mosquitto)
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
	"net"
	"os/exec"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	mqttadapter "github.com/bucketrelay/bucketrelay/adapters/mqtt"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

func init() { harness.Register("mqtt", runMQTT) }

const (
	mqttBenchAddr  = "127.0.0.1:1883"
	mqttBenchTopic = "minio/bench"
)

// mqttDirect publishes bodies (cycling) at QoS 1 on one client, in batches
// of nkBatch with every message of a batch in flight, and up to window
// batches unacknowledged at once: when window batches are out, it waits
// for every PUBACK of the oldest before publishing the next. It returns the
// acknowledged rate.
func mqttDirect(broker string) func(ctx context.Context, bodies [][]byte, _ []string, window int, d time.Duration) (float64, error) {
	return func(ctx context.Context, bodies [][]byte, _ []string, window int, d time.Duration) (float64, error) {
		opts := paho.NewClientOptions().AddBroker(broker).
			SetClientID(fmt.Sprintf("bucketrelay-bench-direct-%d", time.Now().UnixNano())).
			SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(true)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return 0, fmt.Errorf("direct client: connect: %v", tok.Error())
		}
		defer c.Disconnect(100)
		// out[k%window] holds batch k's tokens; batches k-window+1…k are
		// unacknowledged.
		window = max(1, window)
		out := make([][]paho.Token, window)
		for i := range out {
			out[i] = make([]paho.Token, nkBatch)
		}
		wait := func(toks []paho.Token) error {
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					return fmt.Errorf("direct client: publish: %v", tok.Error())
				}
			}
			return nil
		}
		sent, acked, start := 0, 0, time.Now()
		for k := 0; time.Since(start) < d && ctx.Err() == nil; k++ {
			if k >= window {
				if err := wait(out[k%window]); err != nil {
					return 0, err
				}
				acked += nkBatch
			}
			toks := out[k%window]
			for i := range toks {
				toks[i] = c.Publish(mqttBenchTopic, 1, false, bodies[(sent+i)%len(bodies)])
			}
			sent += nkBatch
		}
		// The batches still out count once acknowledged.
		for k := acked / nkBatch; k < sent/nkBatch; k++ {
			if err := wait(out[k%window]); err != nil {
				return 0, err
			}
			acked += nkBatch
		}
		return float64(acked) / time.Since(start).Seconds(), nil
	}
}

func mosquittoVersion() string { return harness.Version("mosquitto", "-h") }

// mqttStop stops Mosquitto and waits until its process is gone:
// services.sh start skips starting one while pgrep still sees the old
// process, which lingers as a zombie for about a second after pkill.
func mqttStop() error {
	if err := harness.Services("stop", "mosquitto"); err != nil {
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

func runMQTT(ctx context.Context, o harness.Options) (harness.Result, error) {
	if c, err := net.DialTimeout("tcp", mqttBenchAddr, 2*time.Second); err != nil {
		return harness.Result{}, fmt.Errorf("mosquitto at %s (scripts/services.sh start mosquitto): %w", mqttBenchAddr, err)
	} else {
		c.Close()
	}
	gate, err := consumers.StartGate(mqttBenchAddr)
	if err != nil {
		return harness.Result{}, err
	}
	defer gate.Close()
	// One subscriber for the whole scenario; each phase points it at its
	// own set.
	var seen atomic.Pointer[consumers.Sink]
	sub, err := consumers.StartMQTT(consumers.MQTTConfig{Broker: "tcp://" + mqttBenchAddr, Topic: mqttBenchTopic, Unordered: true},
		func(body []byte) {
			if s := seen.Load(); s != nil {
				(*s)(body)
			}
		})
	if err != nil {
		return harness.Result{}, err
	}
	defer sub.Close()
	cfg := mqttadapter.Config{Enable: true, Broker: gate.URL(), Topic: mqttBenchTopic, QoS: 1}
	return nkRun(ctx, o, nkSpec{
		newTarget:    func() (delivery.Target, error) { return mqttadapter.New(cfg, harness.QuietLogger()) },
		directWindow: mqttDirect(gate.URL()),
		consume: func(sink consumers.Sink) (func(), error) {
			seen.Store(&sink)
			return func() { seen.Store(nil) }, nil
		},
		stop: func() error {
			gate.SetOpen(false)
			sub.ForgetSubscriptions()
			return mqttStop()
		},
		start: func() error {
			if err := harness.Services("start", "mosquitto"); err != nil {
				return err
			}
			if err := sub.WaitSubscribed(30 * time.Second); err != nil {
				return err
			}
			gate.SetOpen(true)
			return nil
		},
		goal: "≥ 10000",
		// The kind's default window (adapters/mqtt/kind.go).
		inFlight: mqttadapter.Kind.InFlight,
		notes: []string{
			mosquittoVersion() + " from scripts/services.sh on loopback; QoS 1, a QoS 1 subscriber throughout",
			"direct client: paho on one client, Publish at QoS 1 in batches of 1000 with as many batches unacknowledged as the relay has in flight: when that many are out, wait for every PUBACK of the oldest, then publish the next; \"one batch at a time\": publish 1000, wait for every PUBACK; both publishers go through the same loopback gate (see bench/mqtt.go)",
			"outage: a real broker stop/start (scripts/services.sh stop/start mosquitto); the gate opens once the subscriber has resubscribed",
		},
	})
}
