package mysql

import (
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/testkit/probetest"
)

// TestProbe: the probe connects to the real server without touching the
// table; a wrong password or a port nothing listens on shows the target
// down before any event, and the error never shows the password.
func TestProbe(t *testing.T) {
	testenv.Require(t, "mariadb", addr)
	table := fmt.Sprintf("probe_%d", os.Getpid())
	db := testDB(t, table)
	probetest.Up(t, newTarget(t, testConfig(table, "namespace")), "of the server")
	var name string
	if err := db.QueryRow("SHOW TABLES LIKE ?", table).Scan(&name); err != sql.ErrNoRows {
		t.Fatalf("after a probe: table %q (%v), want none: the probe does not create it", name, err)
	}
	bad := testConfig(table, "namespace")
	bad.Password = "wrong-s3cret"
	probetest.Down(t, newTarget(t, bad), "Access denied", "wrong-s3cret")
	noPort := testConfig(table, "namespace")
	noPort.Port = "1"
	probetest.Down(t, newTarget(t, noPort), "connection refused")
}
