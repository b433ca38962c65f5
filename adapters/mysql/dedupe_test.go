package mysql

import (
	"context"
	"database/sql"
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

func column(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	var out []string
	query(t, db, q, func(r *sql.Rows) error {
		var s string
		err := r.Scan(&s)
		out = append(out, s)
		return err
	})
	return out
}

// TestDedupe: with dedupe a re-sent batch (a retry after a lost commit
// acknowledgement) and an overlapping one store each event once, with its
// id in event_id.
func TestDedupe(t *testing.T) {
	table := tableName("dedupe")
	db := testDB(t, table)
	cfg := testConfig(table, "access")
	cfg.Dedupe = true
	tg := newTarget(t, cfg)
	defer tg.Close()
	its := dedupeItems(6)
	for _, batch := range [][]delivery.Item{its[:4], its[:4], its[2:], its} {
		if err := tg.Send(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	got := column(t, db, "SELECT event_id FROM `"+table+"` ORDER BY event_time")
	var want []string
	for i := range its {
		want = append(want, its[i].EventID())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("event_id column: got %v, want %v (each event once)", got, want)
	}
}

// TestNoDedupeKeepsGuideSchema: without dedupe the table created is the
// guide's (event_time, event_data), and a re-sent batch is stored twice.
func TestNoDedupeKeepsGuideSchema(t *testing.T) {
	table := tableName("nodedupe")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, "access"))
	defer tg.Close()
	for range 2 {
		if err := tg.Send(context.Background(), dedupeItems(2)); err != nil {
			t.Fatal(err)
		}
	}
	cols := column(t, db, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '"+table+"' ORDER BY ORDINAL_POSITION")
	if !slices.Equal(cols, []string{"event_time", "event_data"}) {
		t.Fatalf("columns: got %v, want the guide's [event_time event_data]", cols)
	}
	if n := column(t, db, "SELECT COUNT(*) FROM `"+table+"`"); n[0] != "4" {
		t.Fatalf("rows: got %s, want 4 (no dedupe)", n[0])
	}
}

// TestDedupeOldTable: an access table made without event_id, or with it
// but not unique, is refused with a permanent error that says what to run.
func TestDedupeOldTable(t *testing.T) {
	table := tableName("olddedupe")
	db := testDB(t, table)
	for _, c := range []struct{ cols, want string }{
		{"event_time DATETIME(6) NOT NULL, event_data JSON", "ADD COLUMN event_id VARCHAR(64), ADD UNIQUE KEY (event_id)"},
		{"event_time DATETIME(6) NOT NULL, event_data JSON, event_id VARCHAR(64)", "ADD UNIQUE KEY (event_id)"},
	} {
		if _, err := db.Exec("DROP TABLE IF EXISTS `" + table + "`"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE `" + table + "` (" + c.cols + ")"); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(table, "access")
		cfg.Dedupe = true
		tg := newTarget(t, cfg)
		err := tg.Send(context.Background(), dedupeItems(1))
		tg.Close()
		if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("table (%s): got %v, want a permanent error saying %q", c.cols, err, c.want)
		}
	}
	if err := (&Config{Table: "t", Database: "d", Dedupe: true}).Validate(); err == nil || !strings.Contains(err.Error(), "dedupe") {
		t.Errorf("dedupe on a namespace table: got %v, want an error on dedupe", err)
	}
}
