package postgresql

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe connects to the real server without touching the
// table; a wrong password or a port nothing listens on shows the target
// down before any event, and the error never shows the password.
func TestProbe(t *testing.T) {
	requirePostgres(t)
	table := fmt.Sprintf("probe_%d", os.Getpid())
	probetest.Up(t, newTarget(t, seedConfig("namespace", table)), "of the server")
	c := db(t)
	defer c.Close(context.Background())
	var reg *string
	if err := c.QueryRow(context.Background(), "SELECT to_regclass($1)::text", table).Scan(&reg); err != nil || reg != nil {
		t.Fatalf("after a probe: table %v (%v), want none: the probe does not create it", reg, err)
	}
	bad := seedConfig("namespace", table)
	bad.Password = "wrong-s3cret"
	probetest.Down(t, newTarget(t, bad), "password authentication failed", "wrong-s3cret")
	noPort := seedConfig("namespace", table)
	noPort.Port = "1"
	probetest.Down(t, newTarget(t, noPort), "connect", password)
}
