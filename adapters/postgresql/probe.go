package postgresql

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that PostgreSQL accepts the target's connection: it
// connects on a connection of its own (authentication, TLS and database
// as configured), pings and disconnects. The table is not touched: it is
// checked, or created, by the first Send.
func (t *Target) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, t.cc)
	if err != nil {
		return t.errorf("connecting: %v", err)
	}
	defer c.Close(context.Background())
	if err := c.Ping(ctx); err != nil {
		return t.errorf("ping: %v", err)
	}
	return nil
}
