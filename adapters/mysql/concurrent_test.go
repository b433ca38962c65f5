package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/testkit/sendtest"
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

// TestConcurrentSendsDirect calls Send from several goroutines at once,
// each batch on its own keys, in rounds over the same keys: the access
// table holds every event once, each object's rows in order (InnoDB's
// row ids follow the inserts); a batch holding a record the server
// refuses fails alone, naming that item, while the batches beside it are
// stored whole.
func TestConcurrentSendsDirect(t *testing.T) {
	table := tableName("conc_direct")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, FormatAccess))
	defer tg.Close()
	rows := func() [][]byte {
		var out [][]byte
		query(t, db, "SELECT event_data FROM `"+table+"`", func(r *sql.Rows) error {
			var v []byte
			err := r.Scan(&v)
			out = append(out, v)
			return err
		})
		return out
	}
	rounds := sendtest.Rounds("conc-mysql", 4, 4, 60, 12)
	sendtest.SendAll(t, tg, rounds[:3])
	sendtest.Check(t, rows(), sendtest.Flatten(rounds[:3]...), true)

	last, bad := rounds[3], 17
	last[2][bad].Record = json.RawMessage(`{"eventName": "s3:ObjectCreated:Put", "broken`)
	for b, err := range sendtest.Send(context.Background(), tg, last) {
		var be *delivery.BatchError
		switch {
		case b != 2 && err != nil:
			t.Fatalf("batch %d beside the failing one: Send: %v, want nil", b, err)
		case b == 2 && (!errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != bad || !delivery.IsPermanent(be.Failed[0].Err)):
			t.Fatalf("batch 2: Send: got %v, want a BatchError with item %d alone, permanent", err, bad)
		}
	}
	want := sendtest.Flatten(rounds...)
	at := 3*4*60 + 2*60 + bad
	want = append(want[:at:at], want[at+1:]...)
	sendtest.Check(t, rows(), want, true)
}
