package consumers

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// AMQPConfig says what an AMQP consumer consumes.
type AMQPConfig struct {
	// URL is the broker's amqp:// URL. Required.
	URL string
	// Exchange is the durable fanout exchange to bind to; it is declared
	// if missing. Required.
	Exchange string
	// Queue is the durable queue bound to Exchange. It is deleted before
	// the consumer starts (so it holds nothing from an earlier run) and
	// again on Close. Required.
	Queue string
	// AutoAck lets the broker count a message acknowledged when it sends
	// it: messages sent and not yet handed to the Sink are lost when the
	// broker stops. Zero value: the consumer acknowledges messages after
	// their Sink returned (up to 100 in one acknowledgement), with
	// Prefetch unacknowledged; a broker restart delivers the
	// unacknowledged ones again.
	AutoAck bool
	// Prefetch is the channel's prefetch count without AutoAck. Zero
	// value: 1000.
	Prefetch int
	// DeleteExchange also deletes Exchange on Close.
	DeleteExchange bool
}

// AMQP consumes one durable queue bound to a fanout exchange, as the seed's
// pika example does, and reconnects after the broker restarts. Unlike the
// example, the queue and the exchange are durable, so that messages the
// broker confirmed survive a restart.
type AMQP struct {
	cfg   AMQPConfig
	sink  Sink
	msink MessageSink // headers are built only for it
	count atomic.Int64
	ready chan struct{} // closed once the queue is bound
	once  sync.Once
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// StartAMQP deletes cfg.Queue, starts consuming it anew and returns once the
// queue is bound to the exchange (or after 30 s, with an error).
func StartAMQP(cfg AMQPConfig, sink Sink) (*AMQP, error) {
	return startAMQP(cfg, sink, nil)
}

// StartAMQPMessages is StartAMQP handing each message with its headers:
// its application properties, and content-type and message-id.
func StartAMQPMessages(cfg AMQPConfig, sink MessageSink) (*AMQP, error) {
	return startAMQP(cfg, nil, sink)
}

func startAMQP(cfg AMQPConfig, sink Sink, msink MessageSink) (*AMQP, error) {
	if cfg.URL == "" || cfg.Exchange == "" || cfg.Queue == "" {
		return nil, errors.New("consumers: AMQPConfig needs URL, Exchange and Queue")
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 1000
	}
	if err := amqpDelete(cfg.URL, cfg.Queue, ""); err != nil {
		return nil, fmt.Errorf("consumers: amqp: %w", err)
	}
	c := &AMQP{cfg: cfg, sink: sink, msink: msink, ready: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	select {
	case <-c.ready:
		return c, nil
	case <-time.After(30 * time.Second):
		c.Close()
		return nil, errors.New("consumers: amqp: consumer did not bind its queue in 30s")
	}
}

// NewAMQP is StartAMQP for a test: it fails t on error and closes the
// consumer when the test ends.
func NewAMQP(t testing.TB, cfg AMQPConfig, sink Sink) *AMQP {
	t.Helper()
	return newAMQP(t, cfg, sink, nil)
}

// NewAMQPMessages is StartAMQPMessages for a test: it fails t on error and
// closes the consumer when the test ends.
func NewAMQPMessages(t testing.TB, cfg AMQPConfig, sink MessageSink) *AMQP {
	t.Helper()
	return newAMQP(t, cfg, nil, sink)
}

func newAMQP(t testing.TB, cfg AMQPConfig, sink Sink, msink MessageSink) *AMQP {
	t.Helper()
	c, err := startAMQP(cfg, sink, msink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Count returns how many messages the consumer received, redeliveries
// included.
func (c *AMQP) Count() int64 { return c.count.Load() }

// Close stops consuming and deletes the queue (and the exchange if
// DeleteExchange).
func (c *AMQP) Close() error {
	var err error
	c.close.Do(func() {
		close(c.stop)
		<-c.done
		ex := ""
		if c.cfg.DeleteExchange {
			ex = c.cfg.Exchange
		}
		err = amqpDelete(c.cfg.URL, c.cfg.Queue, ex)
	})
	return err
}

func (c *AMQP) run() {
	defer close(c.done)
	for {
		_ = c.consume() // the broker went away: reconnect
		select {
		case <-c.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *AMQP) consume() error {
	conn, err := amqp091.Dial(c.cfg.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(c.cfg.Exchange, "fanout", true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(c.cfg.Queue, true, false, false, false, nil); err != nil {
		return err
	}
	if err := ch.QueueBind(c.cfg.Queue, "", c.cfg.Exchange, false, nil); err != nil {
		return err
	}
	if !c.cfg.AutoAck {
		if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
			return err
		}
	}
	msgs, err := ch.Consume(c.cfg.Queue, "", c.cfg.AutoAck, false, false, false, nil)
	if err != nil {
		return err
	}
	c.once.Do(func() { close(c.ready) })
	// Without AutoAck, deliveries are acknowledged after their Sink
	// returned, up to amqpAckEvery at a time (multiple) and whatever is
	// unacknowledged whenever no delivery is waiting: an acknowledgement
	// frame per message would cost the consumer more than the broker.
	var last amqp091.Delivery
	unacked := 0
	ack := func() {
		if unacked > 0 {
			_ = last.Ack(true)
			unacked = 0
		}
	}
	for {
		var d amqp091.Delivery
		var ok bool
		select {
		case <-c.stop:
			return nil
		case d, ok = <-msgs:
		default:
			ack()
			select {
			case <-c.stop:
				return nil
			case d, ok = <-msgs:
			}
		}
		if !ok {
			return errors.New("consumer channel closed")
		}
		c.count.Add(1)
		if c.sink != nil {
			c.sink(d.Body)
		}
		if c.msink != nil {
			h := map[string]string{"content-type": d.ContentType, "message-id": d.MessageId}
			for k, v := range d.Headers {
				h[k] = fmt.Sprint(v)
			}
			c.msink(Message{Body: d.Body, Headers: h})
		}
		if !c.cfg.AutoAck {
			last, unacked = d, unacked+1
			if unacked >= amqpAckEvery {
				ack()
			}
		}
	}
}

// amqpAckEvery bounds the deliveries one acknowledgement covers.
const amqpAckEvery = 100

// amqpDelete deletes queue and, if exchange is not empty, exchange.
func amqpDelete(url, queue, exchange string) error {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return err
	}
	if exchange != "" {
		return ch.ExchangeDelete(exchange, false, false)
	}
	return nil
}
