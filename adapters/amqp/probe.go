package amqp

import (
	"context"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the broker accepts the target's credentials: it dials
// (TLS for amqps), logs in to the vhost, opens a channel and checks that a
// configured exchange exists (passively: it declares nothing), then closes
// its connection. It uses a connection of its own, so it may run beside
// Send; nothing is published.
func (t *Target) Probe(ctx context.Context) error {
	conn, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.CloseDeadline(time.Now().Add(closeTimeout))
	ch, err := conn.Channel()
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
