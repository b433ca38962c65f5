package postgresql

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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
	requirePostgres(t)
	t.Run("ns", func(t *testing.T) {
		targettest.RunConcurrent(t, namespaceHarness(uniqueTable(t, "conc_ns")))
	})
	t.Run("access", func(t *testing.T) {
		table := uniqueTable(t, "conc_access")
		exec1(t, "CREATE TABLE "+table+" (id BIGSERIAL PRIMARY KEY, event_time TIMESTAMPTZ NOT NULL, event_data JSONB)")
		targettest.RunConcurrent(t, targettest.Harness{
			New:      func(t testing.TB) delivery.Target { return newTarget(t, seedConfig("access", table)) },
			Received: func(t testing.TB) [][]byte { return accessByID(t, table) },
		})
	})
}

// accessByID returns the event_data of an access table that has an id
// BIGSERIAL column, in id order: the order the rows were inserted in
// (ctid order is not, once several transactions insert side by side).
func accessByID(t testing.TB, table string) [][]byte {
	t.Helper()
	c := db(t)
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT event_data FROM "+table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(d))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConcurrentSendsDirect calls Send from several goroutines at once,
// each batch on its own keys, in rounds over the same keys: every event is
// stored once, each object's in order; a batch holding a record the table
// refuses fails alone, naming that item, while the batches beside it are
// stored whole.
func TestConcurrentSendsDirect(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "conc_direct")
	exec1(t, "CREATE TABLE "+table+" (id BIGSERIAL PRIMARY KEY, event_time TIMESTAMPTZ NOT NULL, event_data JSONB)")
	tg := newTarget(t, seedConfig("access", table))
	defer tg.Close()
	rounds := sendtest.Rounds("conc-pg", 4, 4, 60, 12)
	sendtest.SendAll(t, tg, rounds[:3])
	sendtest.Check(t, accessByID(t, table), sendtest.Flatten(rounds[:3]...), true)

	last := rounds[3]
	bad := 17
	last[2][bad].Record = json.RawMessage(strings.Replace(string(last[2][bad].Record), `"minio:s3"`, `"minio\u0000s3"`, 1))
	errs := sendtest.Send(context.Background(), tg, last)
	for b, err := range errs {
		if b != 2 {
			if err != nil {
				t.Fatalf("batch %d beside the failing one: Send: %v, want nil", b, err)
			}
			continue
		}
		var be *delivery.BatchError
		if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != bad || !delivery.IsPermanent(be.Failed[0].Err) {
			t.Fatalf("batch 2: Send: got %v, want a BatchError with item %d alone, permanent", err, bad)
		}
	}
	want := sendtest.Flatten(rounds...)
	want = append(want[:3*4*60+2*60+bad:3*4*60+2*60+bad], want[3*4*60+2*60+bad+1:]...)
	sendtest.Check(t, accessByID(t, table), want, true)
}

// TestConcurrentOutage: with the kind's default window (a connection per
// batch in flight), a server restart mid-stream loses nothing: what was
// not committed is sent again, each object's rows in order.
func TestConcurrentOutage(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "conc_outage")
	exec1(t, "CREATE TABLE "+table+" (id BIGSERIAL PRIMARY KEY, event_time TIMESTAMPTZ NOT NULL, event_data JSONB)")
	sendtest.RunOutage(t, sendtest.Outage{
		New:      func(t testing.TB) delivery.Target { return newTarget(t, seedConfig("access", table)) },
		Received: func(t testing.TB) [][]byte { return accessByID(t, table) },
		Stop:     stopPostgres,
		Start:    startPostgres,
		Policy:   delivery.Policy{InFlight: Kind.InFlight},
	})
}
