package mysql

import (
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
)

// TestConcurrentSendsKeepConnections: the sends of the kind's default
// window (4 at once) keep their connections between batches: with fewer
// idle connections allowed than sends in flight, those beyond were closed
// after every batch and the next batch dialled and authenticated again.
func TestConcurrentSendsKeepConnections(t *testing.T) {
	table := tableName("pool")
	testDB(t, table)
	tg := newTarget(t, testConfig(table, FormatAccess))
	defer tg.Close()
	sendtest.SendAll(t, tg, sendtest.Rounds("pool-mysql", 5, Kind.InFlight, 50, 10))
	if st := tg.db.Stats(); st.MaxIdleClosed > 0 || st.OpenConnections > MaxOpenConns {
		t.Fatalf("after 5 rounds of %d concurrent sends: %d connections closed as idle beyond the limit, %d open; want 0 closed, at most %d open",
			Kind.InFlight, st.MaxIdleClosed, st.OpenConnections, MaxOpenConns)
	}
}
