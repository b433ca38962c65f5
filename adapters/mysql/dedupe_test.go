package mysql

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"

	"github.com/bucketrelay/bucketrelay/testkit/dedupetest"
)

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
	dedupetest.Dedupe(t, tg, func() []string { return column(t, db, "SELECT event_id FROM `"+table+"` ORDER BY event_time") })
}

// TestNoDedupeKeepsGuideSchema: without dedupe the table created is the
// guide's (event_time, event_data), and a re-sent batch is stored twice.
func TestNoDedupeKeepsGuideSchema(t *testing.T) {
	table := tableName("nodedupe")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, "access"))
	defer tg.Close()
	dedupetest.NoDedupe(t, tg, func() []string {
		return column(t, db, "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '"+table+"' ORDER BY ORDINAL_POSITION")
	}, func() int {
		n, err := strconv.Atoi(column(t, db, "SELECT COUNT(*) FROM `"+table+"`")[0])
		if err != nil {
			t.Fatal(err)
		}
		return n
	})
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
		dedupetest.OldTable(t, newTarget(t, cfg), c.cols, c.want)
	}
	if err := (&Config{Table: "t", Database: "d", Dedupe: true}).Validate(); err == nil || !strings.Contains(err.Error(), "dedupe") {
		t.Errorf("dedupe on a namespace table: got %v, want an error on dedupe", err)
	}
}
