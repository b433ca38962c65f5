package main

// Scenario "amqp": the AMQP target with publisher confirms against the
// RabbitMQ of scripts/services.sh (127.0.0.1:5672), beside a direct
// amqp091-go client publishing the same bodies with confirms outstanding,
// and the drain after the broker was stopped (scripts/services.sh stop
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

// amqpDirect publishes bodies (cycling) in batches of nkBatch with every
// confirmation outstanding, waits for them, and returns the confirmed rate.
func amqpDirect(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
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
	dcs := make([]*amqp091.DeferredConfirmation, nkBatch)
	n, start := 0, time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		for i := range dcs {
			dc, err := ch.PublishWithDeferredConfirm(amqpBenchExchange, "bucketlogs", true, false, amqp091.Publishing{
				ContentType: "application/json", DeliveryMode: 2, Body: bodies[(n+i)%len(bodies)],
			})
			if err != nil {
				return 0, err
			}
			dcs[i] = dc
		}
		for _, dc := range dcs {
			if !dc.Wait() {
				return 0, errors.New("direct client: message nacked")
			}
		}
		n += len(dcs)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func rabbitVersion() string { return harness.Version("rabbitmqctl", "-q", "version") }

func runAMQP(ctx context.Context, o harness.Options) (harness.Result, error) {
	// The consumer lives for the whole scenario (auto-ack: the cheapest
	// consumer, so that it keeps up); each phase points it at its own set.
	var seen atomic.Pointer[consumers.Sink]
	c, err := consumers.StartAMQP(consumers.AMQPConfig{URL: amqpBenchURL, Exchange: amqpBenchExchange, Queue: amqpBenchQueue, AutoAck: true, DeleteExchange: true},
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
		newTarget: func() (delivery.Target, error) { return amqpadapter.New(cfg, harness.QuietLogger()) },
		direct:    amqpDirect,
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
			"RabbitMQ " + rabbitVersion() + " from scripts/services.sh on loopback; publisher confirms, persistent messages, mandatory, durable fanout exchange with one durable queue consumed (auto-ack) throughout",
			"direct client: amqp091-go PublishWithDeferredConfirm × 1000, then wait for every confirmation (the target's own scheme, without the log)",
			"outage: a real broker stop/start (scripts/services.sh stop/start rabbitmq); the durable queue keeps what the broker confirmed",
		},
	})
}
