package mqtt

import (
	"context"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that the broker accepts the target's connection: it
// connects a client of its own (TLS when configured; the client id with
// "-probe" added, so the target's own session is not taken over) and
// disconnects. A refused login (bad username or password, not
// authorised) fails the probe. Nothing is published.
func (t *Target) Probe(ctx context.Context) error {
	opts := *t.opts
	opts.SetClientID(t.cfg.ClientID + "-probe")
	opts.SetConnectionLostHandler(nil)
	c := paho.NewClient(&opts)
	timer := time.NewTimer(DefaultConnectTimeout + time.Second)
	defer timer.Stop()
	if err := wait(ctx, nil, c.Connect(), timer.C); err != nil {
		c.Disconnect(0)
		return t.errorf("connecting to %s: %v", t.cfg.Broker, err)
	}
	c.Disconnect(100)
	return nil
}
