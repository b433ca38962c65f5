package amqp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/event/cloudevent"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight):
// through an engine with batches in flight in lanes, every event arrives,
// each object's in order.
func TestConcurrentSends(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-conc-%d", os.Getpid())
	c := NewConsumer(t, brokerURL, ex, ex)
	targettest.RunConcurrent(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New:      func(t testing.TB) delivery.Target { return newTarget(t, testConfig(ex)) },
		Received: func(testing.TB) [][]byte { return c.Bodies() },
	})
}

// TestConcurrentSendsDirect calls Send from several goroutines at once on
// one target, each batch on its own keys, in rounds over the same keys:
// every event arrives once, each object's in order, and the sends share
// one connection.
func TestConcurrentSendsDirect(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-concdirect-%d", os.Getpid())
	c := NewConsumer(t, brokerURL, ex, ex)
	tg := newTarget(t, testConfig(ex))
	rounds := sendtest.Rounds("conc-amqp", 3, 4, 100, 10)
	sendtest.SendAll(t, tg, rounds)
	want := sendtest.Flatten(rounds...)
	got := sendtest.Wait(t, func(testing.TB) [][]byte { return c.All() }, len(want), 30*time.Second)
	sendtest.Check(t, got, want, true)
}

// headersQueue binds an exclusive queue to a headers exchange ex taking
// only messages whose cloudEvents_type is typ, and collects their bodies.
func headersQueue(t *testing.T, ex, typ string) func() [][]byte {
	conn, err := amqp091.Dial(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(ex, "headers", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "", ex, false, amqp091.Table{"x-match": "all", cloudevent.AMQP.Prefix + "type": typ}); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bodies [][]byte
	go func() {
		for d := range ds {
			mu.Lock()
			bodies = append(bodies, d.Body)
			mu.Unlock()
		}
	}()
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), bodies...)
	}
}

// TestConcurrentSendsFailOwnBatch: with batches in flight together on one
// channel, a message the broker returns (mandatory, no queue takes it)
// fails its own batch, and only that item of it; the batches beside it
// are delivered whole and report nil.
func TestConcurrentSendsFailOwnBatch(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-concfail-%d", os.Getpid())
	received := headersQueue(t, ex, cloudevent.TypePrefix+strings.TrimPrefix(string(event.ObjectCreatedPut), "s3:"))
	cfg := testConfig(ex)
	cfg.ExchangeType, cfg.Durable, cfg.AutoDeleted = "", false, true
	cfg.Format = kit.FormatCloudEvents
	tg := newTarget(t, cfg)
	for round := 0; round < 3; round++ {
		batches := sendtest.Rounds(fmt.Sprintf("concfail-%d", round), 1, 4, 100, 10)[0]
		bad := 40 + round
		del := targettest.Item("concfail", "removed.jpg", event.ObjectRemovedDelete, 100_000+round)
		batches[round][bad] = del // no queue takes a delete: returned
		errs := sendtest.Send(context.Background(), tg, batches)
		for b, err := range errs {
			if b != round {
				if err != nil {
					t.Fatalf("round %d, batch %d beside the failing one: Send: %v, want nil", round, b, err)
				}
				continue
			}
			var be *delivery.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != bad || delivery.IsPermanent(be.Failed[0].Err) ||
				!strings.Contains(be.Failed[0].Err.Error(), "returned") {
				t.Fatalf("round %d, batch %d: Send: got %v, want a BatchError with item %d alone, returned, retryable", round, b, err, bad)
			}
		}
		want := sendtest.Flatten(batches)
		want = append(want[:round*100+bad:round*100+bad], want[round*100+bad+1:]...)
		got := sendtest.Wait(t, func(testing.TB) [][]byte { return received() }, (round+1)*399, 30*time.Second)
		sendtest.Check(t, got[round*399:], want, true)
	}
}

// TestConcurrentOutage: with the kind's default window (batches in flight
// on one channel), a broker restart mid-stream loses nothing: what the
// broker did not confirm is sent again, each object's events in order.
func TestConcurrentOutage(t *testing.T) {
	testenv.Require(t, "rabbitmq", brokerAddr)
	ex := fmt.Sprintf("bucketrelay-concoutage-%d", os.Getpid())
	c := NewConsumer(t, brokerURL, ex, ex)
	sendtest.RunOutage(t, sendtest.Outage{
		New:      func(t testing.TB) delivery.Target { return newTarget(t, testConfig(ex)) },
		Received: func(testing.TB) [][]byte { return c.All() },
		Stop:     func(t testing.TB) { testenv.Services(t, "stop", "rabbitmq") },
		Start:    func(t testing.TB) { testenv.Services(t, "start", "rabbitmq") },
		Policy:   delivery.Policy{InFlight: Kind.InFlight},
	})
}
