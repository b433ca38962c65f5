package postgresql

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

// dedupeItems returns n items of one log, as the engine gives them.
func dedupeItems(n int) []delivery.Item {
	its := make([]delivery.Item, n)
	for i := range its {
		its[i] = targettest.Item("b", fmt.Sprintf("o%d", i%2), event.ObjectCreatedPut, i)
		its[i].LogID = "00000000cafef00d"
	}
	return its
}

// query returns the first column of every row of sql, as text.
func query(t *testing.T, sql string) []string {
	t.Helper()
	c := db(t)
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestDedupe: with dedupe a re-sent batch (a retry after a lost commit
// acknowledgement) and an overlapping one store each event once, with its
// id in event_id.
func TestDedupe(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "dedupe")
	cfg := seedConfig("access", table)
	cfg.Dedupe = true
	tg := newTarget(t, cfg)
	defer tg.Close()
	its := dedupeItems(6)
	ctx := context.Background()
	for _, batch := range [][]delivery.Item{its[:4], its[:4], its[2:], its} {
		if err := tg.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	got := query(t, "SELECT event_id FROM "+table+" ORDER BY ctid")
	var want []string
	for i := range its {
		want = append(want, its[i].EventID())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("event_id column: got %v, want %v (each event once, in order)", got, want)
	}
}

// TestNoDedupeKeepsGuideSchema: without dedupe the table created is the
// guide's (event_time, event_data), and a re-sent batch is stored twice.
func TestNoDedupeKeepsGuideSchema(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "nodedupe")
	tg := newTarget(t, seedConfig("access", table))
	defer tg.Close()
	its := dedupeItems(2)
	for range 2 {
		if err := tg.Send(context.Background(), its); err != nil {
			t.Fatal(err)
		}
	}
	cols := query(t, "SELECT column_name::text FROM information_schema.columns WHERE table_name = '"+table+"' ORDER BY ordinal_position")
	if !slices.Equal(cols, []string{"event_time", "event_data"}) {
		t.Fatalf("columns: got %v, want the guide's [event_time event_data]", cols)
	}
	if _, d := accessRows(t, table); len(d) != 4 {
		t.Fatalf("rows: got %d, want 4 (no dedupe)", len(d))
	}
}

// TestDedupeOldTable: an access table made without event_id, or with it
// but not unique, is refused with a permanent error that says what to run.
func TestDedupeOldTable(t *testing.T) {
	requirePostgres(t)
	for _, c := range []struct{ cols, want string }{
		{"event_time TIMESTAMPTZ NOT NULL, event_data JSONB", "ADD COLUMN event_id VARCHAR UNIQUE"},
		{"event_time TIMESTAMPTZ NOT NULL, event_data JSONB, event_id VARCHAR", "ADD UNIQUE (event_id)"},
	} {
		table := uniqueTable(t, "olddedupe")
		exec1(t, "CREATE TABLE "+table+" ("+c.cols+")")
		cfg := seedConfig("access", table)
		cfg.Dedupe = true
		tg := newTarget(t, cfg)
		err := tg.Send(context.Background(), dedupeItems(1))
		tg.Close()
		if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("table (%s): got %v, want a permanent error saying %q", c.cols, err, c.want)
		}
	}
	if err := (&Config{Table: "t", Format: "namespace", Dedupe: true}).Validate(); err == nil || !strings.Contains(err.Error(), "dedupe") {
		t.Errorf("dedupe on a namespace table: got %v, want an error on dedupe", err)
	}
}
