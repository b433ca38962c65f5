package mysql

import (
	"context"
	"fmt"

	"github.com/bucketrelay/bucketrelay/delivery"
)

var _ delivery.Prober = (*Target)(nil)

// Probe checks that MySQL accepts the target's connection: it pings
// through the target's pool (which is safe beside Send), so a wrong
// password, an unknown database or a server that cannot be reached shows
// at once. The table is not touched: it is created or checked by the
// first Send.
func (t *Target) Probe(ctx context.Context) error {
	if err := t.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql: connecting: %s", t.redact(err))
	}
	return nil
}
