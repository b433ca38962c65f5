package redis

import (
	"context"

	"github.com/gomodule/redigo/redis"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that Redis accepts the target's connection: it dials on a
// connection of its own (TLS, AUTH and SELECT as configured), sends PING,
// and checks that the key is absent or of the format's type (a hash for
// namespace, a list for access), so a key of the wrong type is reported
// before the first event. Nothing is written.
func (t *Target) Probe(ctx context.Context) error {
	c, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := redis.DoContext(c.Conn, ctx, "PING"); err != nil {
		return t.errorf("PING: %v", err)
	}
	_, err = t.keyType(ctx, c.Conn)
	return err
}
