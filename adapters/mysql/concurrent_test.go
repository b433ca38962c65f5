package mysql

import (
	"database/sql"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
)

// TestConcurrentSends: Send is safe for concurrent use (kit.Kind.InFlight),
// in both formats: batches in flight in lanes leave the namespace table
// replaying the events in order gives, and the access table every event,
// in order per key.
func TestConcurrentSends(t *testing.T) {
	t.Run("ns", func(t *testing.T) {
		targettest.RunConcurrent(t, namespaceHarness(t, tableName("conc_ns")))
	})
	t.Run("access", func(t *testing.T) {
		table := tableName("conc_access")
		db := testDB(t, table)
		targettest.RunConcurrent(t, targettest.Harness{
			New: func(t testing.TB) delivery.Target { return newTarget(t, testConfig(table, FormatAccess)) },
			Received: func(t testing.TB) [][]byte {
				var out [][]byte
				query(t, db, "SELECT event_data FROM `"+table+"`", func(r *sql.Rows) error {
					var v []byte
					err := r.Scan(&v)
					out = append(out, v)
					return err
				})
				return out
			},
		})
	})
}
