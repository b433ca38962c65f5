package mqtt

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight):
// through an engine with batches in flight in lanes, every event arrives,
// each object's in order, at QoS 1 and with MQTT 5.
func TestConcurrentSends(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	t.Run("qos1", func(t *testing.T) { targettest.RunConcurrent(t, harnessWith(t, 1, nil)) })
	t.Run("v5", func(t *testing.T) {
		targettest.RunConcurrent(t, harnessWith(t, 1, func(c *Config) { c.ProtocolVersion = 5 }))
	})
}

// TestConcurrentSendsDirect calls Send from several goroutines at once on
// one target, each batch on its own keys, in rounds over the same keys:
// every event arrives once, each object's in order. At QoS 2 the sends
// share maxInFlight (20, Mosquitto's max_inflight_messages): were it per
// send, Mosquitto would complete the handshake for, then drop, the
// messages beyond its limit, and events would be missing.
func TestConcurrentSendsDirect(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	for _, c := range []struct {
		name    string
		qos, pv int
	}{{"qos1", 1, 0}, {"qos2", 2, 0}, {"v5", 1, 5}} {
		t.Run(c.name, func(t *testing.T) {
			topic := fmt.Sprintf("minio/conc-%d-%s", os.Getpid(), c.name)
			_, sub := NewSubscriber(t, brokerURL, topic)
			tg := newTarget(t, Config{Enable: true, Broker: brokerURL, Topic: topic, QoS: c.qos, ProtocolVersion: c.pv})
			rounds := sendtest.Rounds("conc-mqtt-"+c.name, 3, 4, 100, 10)
			sendtest.SendAll(t, tg, rounds)
			want := sendtest.Flatten(rounds...)
			got := sendtest.Wait(t, func(testing.TB) [][]byte { return sub.All() }, len(want), 30*time.Second)
			sendtest.Check(t, got, want, true)
		})
	}
}

// TestConcurrentSendsFailOwnBatch: a send whose context ends fails its own
// unacknowledged items only; the sends beside it on the same connection
// deliver their batches whole and report nil, the connection is kept, and
// whatever the failed send did not report failed arrived.
func TestConcurrentSendsFailOwnBatch(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	topic := fmt.Sprintf("minio/concfail-%d", os.Getpid())
	_, sub := NewSubscriber(t, brokerURL, topic)
	tg := newTarget(t, Config{Enable: true, Broker: brokerURL, Topic: topic, QoS: 1})
	var delivered []delivery.Item
	var client paho.Client
	for r, batches := range sendtest.Rounds("concfail-mqtt", 4, 4, 200, 10) {
		ctx, cancel := context.WithCancel(context.Background())
		if r == 0 {
			cancel() // before it starts: every item of batch 1 fails
		} else {
			time.AfterFunc(time.Duration(3*r*r)*time.Millisecond, cancel) // somewhere in flight
		}
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for b := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if b == 1 {
					errs[b] = tg.Send(ctx, batches[b])
				} else {
					errs[b] = tg.Send(context.Background(), batches[b])
				}
			}()
		}
		wg.Wait()
		cancel()
		for b, err := range errs {
			if b != 1 && err != nil {
				t.Fatalf("round %d, batch %d beside the cancelled one: Send: %v, want nil", r, b, err)
			}
		}
		if r == 0 && errs[1] == nil {
			t.Fatal("round 0: a send with a cancelled context returned nil")
		}
		t.Logf("round %d: the cancelled send reported %d of %d items failed", r, len(sendtest.Failed(errs[1], len(batches[1]))), len(batches[1]))
		tg.mu.Lock()
		c := tg.client
		tg.mu.Unlock()
		if c == nil || client != nil && c != client {
			t.Fatalf("round %d: the target dropped its connection for a cancelled send, want it kept for the others", r)
		}
		client = c
		delivered = append(delivered, sendtest.Delivered(batches, errs)...)
	}
	ids := map[int]bool{}
	for i := range delivered {
		ids[int(delivered[i].Seq-1)] = true
	}
	// What the cancelled sends published before they ended may arrive
	// too: only the items reported delivered are checked.
	var got [][]byte
	end := time.Now().Add(30 * time.Second)
	for {
		got = got[:0]
		for _, b := range sub.All() {
			if id, ok := sendtest.ID(b); ok && ids[id] {
				got = append(got, b)
			}
		}
		if len(got) >= len(delivered) || time.Now().After(end) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sendtest.Check(t, got, delivered, true)
}

// TestConcurrentOutage: with the kind's default window (batches in flight
// on one connection), a broker restart mid-stream loses nothing at QoS 1:
// what the broker did not acknowledge is sent again, each object's events
// in order.
func TestConcurrentOutage(t *testing.T) {
	testenv.Require(t, "mosquitto", brokerAddr)
	topic := fmt.Sprintf("minio/concoutage-%d", os.Getpid())
	sub, got := NewSubscriber(t, brokerURL, topic)
	gate := consumers.NewGate(t, brokerAddr)
	sendtest.RunOutage(t, sendtest.Outage{
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Broker: gate.URL(), Topic: topic, QoS: 1})
		},
		Received: got.Received,
		Stop: func(t testing.TB) {
			gate.SetOpen(false)
			StopMosquitto(t)
			sub.ForgetSubscriptions()
		},
		Start: func(t testing.TB) {
			testenv.Services(t, "start", "mosquitto")
			sub.RequireSubscribed(t)
			gate.SetOpen(true)
		},
		Policy: delivery.Policy{InFlight: Kind.InFlight},
	})
}
