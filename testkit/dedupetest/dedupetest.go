// Package dedupetest holds the checks of the SQL targets' dedupe option
// (mysql, postgresql) that do not depend on the database: each event is
// stored once however batches are re-sent, the guide's schema is kept
// without dedupe, and an old table is refused with a permanent error that
// says what to run. The adapter's test supplies the target and reads its
// table.
package dedupetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// LogID is the log every item of Items comes from.
const LogID = "00000000cafef00d"

// Items returns n items of one log (keys o0 and o1 in turn), as the
// engine gives them: each has an event id.
func Items(n int) []delivery.Item {
	its := make([]delivery.Item, n)
	for i := range its {
		its[i] = targettest.Item("b", fmt.Sprintf("o%d", i%2), event.ObjectCreatedPut, i)
		its[i].LogID = LogID
	}
	return its
}

// Dedupe sends tg (dedupe on, a new access table) four batches of six
// events: the first four, the same again (a retry after a lost commit
// acknowledgement), an overlapping one and all of them. eventIDs, reading
// the table's event_id column in insertion order, must then list each
// event once, in order.
func Dedupe(t testing.TB, tg delivery.Target, eventIDs func() []string) {
	t.Helper()
	its := Items(6)
	for _, batch := range [][]delivery.Item{its[:4], its[:4], its[2:], its} {
		if err := tg.Send(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range its {
		want = append(want, its[i].EventID())
	}
	if got := eventIDs(); !slices.Equal(got, want) {
		t.Fatalf("event_id column: got %v, want %v (each event once, in order)", got, want)
	}
}

// NoDedupe sends tg (dedupe off, a new access table) the same two events
// twice: columns (the table's, in order) must be the guide's event_time
// and event_data, and rows must count 4.
func NoDedupe(t testing.TB, tg delivery.Target, columns func() []string, rows func() int) {
	t.Helper()
	its := Items(2)
	for range 2 {
		if err := tg.Send(context.Background(), its); err != nil {
			t.Fatal(err)
		}
	}
	if cols := columns(); !slices.Equal(cols, []string{"event_time", "event_data"}) {
		t.Fatalf("columns: got %v, want the guide's [event_time event_data]", cols)
	}
	if n := rows(); n != 4 {
		t.Fatalf("rows: got %d, want 4 (no dedupe)", n)
	}
}

// OldTable sends one event to tg (dedupe on, over a table made with the
// columns cols, without a unique event_id), closes tg, and checks the send
// failed with a permanent error containing want (the statement to run).
func OldTable(t testing.TB, tg delivery.Target, cols, want string) {
	t.Helper()
	err := tg.Send(context.Background(), Items(1))
	tg.Close()
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("table (%s): got %v, want a permanent error saying %q", cols, err, want)
	}
}
