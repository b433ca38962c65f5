package main

// Scenario "amqp": the AMQP target with publisher confirms against the
// RabbitMQ of scripts/services.sh (127.0.0.1:5672), beside a direct
// amqp091-go client publishing the same bodies with confirms outstanding,
// and the drain after the broker was stopped (scripts/services.sh stop
// rabbitmq) and started again. It uses the NATS/Kafka harness (nkRun).
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
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	amqpadapter "github.com/bucketrelay/bucketrelay/adapters/amqp"
	"github.com/bucketrelay/bucketrelay/delivery"
)

func init() { register("amqp", runAMQP) }

const (
	amqpBenchURL      = "amqp://relay:relay@127.0.0.1:5672/"
	amqpBenchExchange = "bucketevents-bench"
	amqpBenchQueue    = "bucketrelay-bench"
)

// amqpBenchConsumer consumes the bench queue for the whole scenario,
// reconnecting after the broker restarts, and reports bodies to the current
// nkSeen, if any.
type amqpBenchConsumer struct {
	seen     atomic.Pointer[nkSeen]
	received atomic.Int64
	stop     chan struct{}
	done     chan struct{}
	ready    chan struct{}
	once     sync.Once
}

func (c *amqpBenchConsumer) run() {
	defer close(c.done)
	for {
		_ = c.consume()
		select {
		case <-c.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// amqpBenchTopology declares the exchange and the queue and binds them.
func amqpBenchTopology(ch *amqp091.Channel) error {
	if err := ch.ExchangeDeclare(amqpBenchExchange, "fanout", true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(amqpBenchQueue, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(amqpBenchQueue, "", amqpBenchExchange, false, nil)
}

func (c *amqpBenchConsumer) consume() error {
	conn, err := amqp091.Dial(amqpBenchURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := amqpBenchTopology(ch); err != nil {
		return err
	}
	msgs, err := ch.Consume(amqpBenchQueue, "", true, false, false, false, nil)
	if err != nil {
		return err
	}
	c.once.Do(func() { close(c.ready) })
	for {
		select {
		case <-c.stop:
			return nil
		case d, ok := <-msgs:
			if !ok {
				return errors.New("consumer channel closed")
			}
			c.received.Add(1)
			if s := c.seen.Load(); s != nil {
				s.add(d.Body)
			}
		}
	}
}

// amqpBenchReset deletes the bench queue and exchange.
func amqpBenchReset() error {
	conn, err := amqp091.Dial(amqpBenchURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDelete(amqpBenchQueue, false, false, false); err != nil {
		return err
	}
	return ch.ExchangeDelete(amqpBenchExchange, false, false)
}

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

func rabbitVersion() string {
	out, err := exec.Command("rabbitmqctl", "-q", "version").Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}

func runAMQP(ctx context.Context, o Options) (Result, error) {
	if err := amqpBenchReset(); err != nil {
		return Result{}, fmt.Errorf("rabbitmq at 127.0.0.1:5672 (scripts/services.sh start rabbitmq): %w", err)
	}
	c := &amqpBenchConsumer{stop: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{})}
	go c.run()
	defer func() {
		close(c.stop)
		<-c.done
		_ = amqpBenchReset()
	}()
	select {
	case <-c.ready:
	case <-time.After(30 * time.Second):
		return Result{}, errors.New("consumer did not bind its queue")
	}
	cfg := amqpadapter.Config{
		Enable: true, URL: amqpBenchURL, Exchange: amqpBenchExchange, RoutingKey: "bucketlogs", ExchangeType: "fanout",
		DeliveryMode: 2, Durable: true, Mandatory: true,
	}
	return nkRun(ctx, o, nkSpec{
		newTarget: func() (delivery.Target, error) { return amqpadapter.New(cfg, nkQuiet()) },
		direct:    amqpDirect,
		consume: func(seen *nkSeen) (func(), error) {
			c.seen.Store(seen)
			return func() { c.seen.Store(nil) }, nil
		},
		stop:  func() error { return nkServices("stop", "rabbitmq") },
		start: func() error { return nkServices("start", "rabbitmq") },
		goal:  "≥ 20000",
		notes: []string{
			"RabbitMQ " + rabbitVersion() + " from scripts/services.sh on loopback; publisher confirms, persistent messages, mandatory, durable fanout exchange with one durable queue consumed (auto-ack) throughout",
			"direct client: amqp091-go PublishWithDeferredConfirm × 1000, then wait for every confirmation (the target's own scheme, without the log)",
			"outage: a real broker stop/start (scripts/services.sh stop/start rabbitmq); the durable queue keeps what the broker confirmed",
		},
	})
}
