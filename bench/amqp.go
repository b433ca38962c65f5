package main

// Scenario "amqp": the AMQP target with publisher confirms against the
// RabbitMQ of scripts/services.sh (127.0.0.1:5672), beside a direct
// amqp091-go client publishing the same bodies with confirms outstanding
// and as many batches unconfirmed as the relay has in flight (and, as an
// extra row, one batch at a time), and the drain after the broker was stopped (scripts/services.sh stop
// rabbitmq) and started again. It uses the broker harness (nkRun, brokers.go).
//
// Topology: a durable fanout exchange with one durable queue bound to it,
// consumed for the whole scenario (so the broker routes, stores and hands
// out every message, as in production); persistent messages (deliveryMode
// 2) and mandatory, the settings under which acknowledged events survive
// the broker's restart.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	amqpadapter "github.com/bucketrelay/bucketrelay/adapters/amqp"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
)

func init() { harness.Register("amqp", runAMQP) }

const (
	amqpBenchURL      = "amqp://relay:relay@127.0.0.1:5672/"
	amqpBenchExchange = "bucketevents-bench"
	amqpBenchQueue    = "bucketrelay-bench"
)

// amqpDirect publishes bodies (cycling) on one channel in confirm mode, in
// batches of nkBatch with every confirmation of a batch outstanding, and up
// to window batches unconfirmed at once: when window batches are out, it
// waits for every confirmation of the oldest before publishing the next.
// It returns the confirmed rate.
func amqpDirect(ctx context.Context, bodies [][]byte, _ []string, window int, d time.Duration) (float64, error) {
	conn, err := amqp091.Dial(amqpBenchURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	if err := ch.ExchangeDeclare(amqpBenchExchange, "fanout", true, false, false, false, nil); err != nil {
		return 0, err
	}
	// out[k%window] holds batch k's confirmations; batches k-window+1…k
	// are unconfirmed.
	window = max(1, window)
	out := make([][]*amqp091.DeferredConfirmation, window)
	for i := range out {
		out[i] = make([]*amqp091.DeferredConfirmation, nkBatch)
	}
	wait := func(dcs []*amqp091.DeferredConfirmation) error {
		for _, dc := range dcs {
			if !dc.Wait() {
				return errors.New("direct client: message nacked")
			}
		}
		return nil
	}
	sent, confirmed, start := 0, 0, time.Now()
	for k := 0; time.Since(start) < d && ctx.Err() == nil; k++ {
		if k >= window {
			if err := wait(out[k%window]); err != nil {
				return 0, err
			}
			confirmed += nkBatch
		}
		dcs := out[k%window]
		for i := range dcs {
			dc, err := ch.PublishWithDeferredConfirm(amqpBenchExchange, "bucketlogs", true, false, amqp091.Publishing{
				ContentType: "application/json", DeliveryMode: 2, Body: bodies[(sent+i)%len(bodies)],
			})
			if err != nil {
				return 0, err
			}
			dcs[i] = dc
		}
		sent += nkBatch
	}
	// The batches still out count once confirmed.
	for k := confirmed / nkBatch; k < sent/nkBatch; k++ {
		if err := wait(out[k%window]); err != nil {
			return 0, err
		}
		confirmed += nkBatch
	}
	return float64(confirmed) / time.Since(start).Seconds(), nil
}

func rabbitVersion() string { return harness.Version("rabbitmqctl", "-q", "version") }

func runAMQP(ctx context.Context, o harness.Options) (harness.Result, error) {
	// The consumer lives for the whole scenario; each phase points it at
	// its own set. It acknowledges after counting (not auto-ack, which
	// loses what the broker sent and the consumer had not yet counted when
	// RabbitMQ stops): "lost" is then lost by the relay, and what a
	// restart delivers again counts as a duplicate.
	var seen atomic.Pointer[consumers.Sink]
	c, err := consumers.StartAMQP(consumers.AMQPConfig{URL: amqpBenchURL, Exchange: amqpBenchExchange, Queue: amqpBenchQueue, Prefetch: 4000, DeleteExchange: true},
		func(body []byte) {
			if s := seen.Load(); s != nil {
				(*s)(body)
			}
		})
	if err != nil {
		return harness.Result{}, fmt.Errorf("rabbitmq at 127.0.0.1:5672 (scripts/services.sh start rabbitmq): %w", err)
	}
	defer c.Close()
	cfg := amqpadapter.Config{
		Enable: true, URL: amqpBenchURL, Exchange: amqpBenchExchange, RoutingKey: "bucketlogs", ExchangeType: "fanout",
		DeliveryMode: 2, Durable: true, Mandatory: true,
	}
	return nkRun(ctx, o, nkSpec{
		newTarget:    func() (delivery.Target, error) { return amqpadapter.New(cfg, harness.QuietLogger()) },
		directWindow: amqpDirect,
		consume: func(sink consumers.Sink) (func(), error) {
			seen.Store(&sink)
			return func() { seen.Store(nil) }, nil
		},
		stop:  func() error { return harness.Services("stop", "rabbitmq") },
		start: func() error { return harness.Services("start", "rabbitmq") },
		goal:  "≥ 20000",
		// The kind's default window (adapters/amqp/kind.go).
		inFlight: amqpadapter.Kind.InFlight,
		notes: []string{
			"RabbitMQ " + rabbitVersion() + " from scripts/services.sh on loopback; publisher confirms, persistent messages, mandatory, durable fanout exchange with one durable queue consumed throughout (acknowledged after counting, up to 100 per acknowledgement, prefetch 4000)",
			"direct client: amqp091-go on one channel in confirm mode, PublishWithDeferredConfirm in batches of 1000 with as many batches unconfirmed as the relay has in flight: when that many are out, wait for every confirmation of the oldest, then publish the next (the target's own scheme, without the log); \"one batch at a time\": publish 1000, wait for every confirmation",
			"outage: a real broker stop/start (scripts/services.sh stop/start rabbitmq); the durable queue keeps what the broker confirmed",
		},
	})
}
