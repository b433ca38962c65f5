package amqp

import (
	"context"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the broker accepts the target's credentials: it dials
// (TLS for amqps), logs in to the vhost, opens a channel and checks that a
// configured exchange exists (passively: it declares nothing), then closes
// its connection. It uses a connection of its own, so it may run beside
// Send; nothing is published.
func (t *Target) Probe(ctx context.Context) error {
	type dialed struct {
		c   *amqp091.Connection
		err error
	}
	res := make(chan dialed, 1)
	go func() {
		c, err := amqp091.DialConfig(t.cfg.URL, t.amqpCfg)
		res <- dialed{c, err}
	}()
	var d dialed
	select {
	case d = <-res:
	case <-ctx.Done():
		go func() {
			if d := <-res; d.c != nil {
				_ = d.c.CloseDeadline(time.Now().Add(closeTimeout))
			}
		}()
		return ctx.Err()
	}
	if d.err != nil {
		return t.errorf("connecting to %s: %v", t.cfg.URL, d.err)
	}
	defer d.c.CloseDeadline(time.Now().Add(closeTimeout))
	ch, err := d.c.Channel()
	if err != nil {
		return t.errorf("opening a channel: %v", err)
	}
	if t.cfg.Exchange != "" {
		if err := ch.ExchangeDeclarePassive(t.cfg.Exchange, "", false, false, false, false, nil); err != nil {
			if t.cfg.ExchangeType != "" {
				// Send declares it; a missing exchange is not a failure.
				return nil
			}
			return t.errorf("exchange %q: %v", t.cfg.Exchange, err)
		}
	}
	return nil
}
