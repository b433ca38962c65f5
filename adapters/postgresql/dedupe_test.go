package postgresql

import (
	"context"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/dedupetest"
)

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
	dedupetest.Dedupe(t, tg, func() []string { return query(t, "SELECT event_id FROM "+table+" ORDER BY ctid") })
}

// TestNoDedupeKeepsGuideSchema: without dedupe the table created is the
// guide's (event_time, event_data), and a re-sent batch is stored twice.
func TestNoDedupeKeepsGuideSchema(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "nodedupe")
	tg := newTarget(t, seedConfig("access", table))
	defer tg.Close()
	dedupetest.NoDedupe(t, tg, func() []string {
		return query(t, "SELECT column_name::text FROM information_schema.columns WHERE table_name = '"+table+"' ORDER BY ordinal_position")
	}, func() int { _, d := accessRows(t, table); return len(d) })
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
		dedupetest.OldTable(t, newTarget(t, cfg), c.cols, c.want)
	}
	if err := (&Config{Table: "t", Format: "namespace", Dedupe: true}).Validate(); err == nil || !strings.Contains(err.Error(), "dedupe") {
		t.Errorf("dedupe on a namespace table: got %v, want an error on dedupe", err)
	}
}
