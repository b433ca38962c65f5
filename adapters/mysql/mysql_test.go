package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/testenv"
	"github.com/bucketrelay/bucketrelay/wal"
)

const addr = "127.0.0.1:3306"

func testConfig(table, format string) Config {
	return Config{Enable: true, Format: format, Table: table, Host: "127.0.0.1", Port: "3306",
		User: "relay", Password: testenv.Getenv("RELAY_TEST_MYSQL_PASSWORD", "password"), Database: "miniodb"}
}

// testDB opens a checking connection and drops table now and at cleanup.
func testDB(t testing.TB, table string) *sql.DB {
	t.Helper()
	testenv.Require(t, "mariadb", addr)
	cfg := testConfig(table, "")
	mc, _ := cfg.driverConfig()
	mc.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	drop := func() { _, _ = db.Exec("DROP TABLE IF EXISTS `" + table + "`") }
	drop()
	t.Cleanup(func() { drop(); db.Close() })
	return db
}

func tableName(kind string) string { return fmt.Sprintf("relay_test_%s_%d", kind, os.Getpid()) }

func stopServer(t testing.TB)  { testenv.Services(t, "stop", "mariadb") }
func startServer(t testing.TB) { testenv.Services(t, "start", "mariadb") }

// query retries a query across a server restart.
func query(t testing.TB, db *sql.DB, q string, scan func(*sql.Rows) error) {
	t.Helper()
	var err error
	for try := 0; try < 50; try++ {
		var rows *sql.Rows
		rows, err = db.Query(q)
		if err == nil {
			for rows.Next() && err == nil {
				err = scan(rows)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
			if err == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", q, err)
}

func state(t testing.TB, db *sql.DB, table string) map[string][]byte {
	m := map[string][]byte{}
	query(t, db, "SELECT key_name, value FROM `"+table+"`", func(r *sql.Rows) error {
		var k string
		var v []byte
		err := r.Scan(&k, &v)
		m[k] = v
		return err
	})
	return m
}

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// namespaceHarness is the suite's harness for a namespace table, which it
// drops now and at cleanup.
func namespaceHarness(t testing.TB, table string) targettest.Harness {
	db := testDB(t, table)
	return targettest.Harness{
		Features: targettest.Features{Namespace: true},
		New:      func(t testing.TB) delivery.Target { return newTarget(t, testConfig(table, "")) },
		State:    func(t testing.TB) map[string][]byte { return state(t, db, table) },
		Stop:     stopServer,
		Start:    startServer,
	}
}

func TestConformanceNamespace(t *testing.T) {
	targettest.Run(t, namespaceHarness(t, tableName("ns")))
}

func TestConformanceAccess(t *testing.T) {
	table := tableName("access")
	db := testDB(t, table)
	targettest.Run(t, targettest.Harness{
		Features: targettest.Features{},
		New:      func(t testing.TB) delivery.Target { return newTarget(t, testConfig(table, FormatAccess)) },
		// Without a primary key InnoDB clusters rows by its hidden row id,
		// so a table scan returns them in insertion order.
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
		Stop:  stopServer,
		Start: startServer,
	})
}

// TestSeedExample is the seed's check: select * from minio_images shows
// key_name | value rows.
func TestSeedExample(t *testing.T) {
	db := testDB(t, "minio_images")
	tg := newTarget(t, Config{Enable: true, Table: "minio_images", Host: "127.0.0.1", Port: "3306", User: "relay", Password: "password", Database: "miniodb"})
	defer tg.Close()
	if err := tg.Send(context.Background(), []delivery.Item{targettest.Item("images", "myphoto.jpg", event.ObjectCreatedPut, 1)}); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("select * from minio_images")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if strings.Join(cols, ",") != "key_name,value" {
		t.Fatalf("got columns %v, want key_name, value", cols)
	}
	n := 0
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		var m struct{ Records []event.Record }
		if err := json.Unmarshal(v, &m); err != nil || len(m.Records) != 1 || m.Records[0].S3.Object.Key != "myphoto.jpg" {
			t.Fatalf("value %s: got %v, want {\"Records\":[record of myphoto.jpg]}", v, err)
		}
		if k != "images/myphoto.jpg" {
			t.Fatalf("got key_name %q, want images/myphoto.jpg", k)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("got %d rows, want 1", n)
	}
}

// TestKeys checks a key of the longest S3 object name, a non-ASCII key, and
// that keys differing only by case are two rows.
func TestKeys(t *testing.T) {
	table := tableName("keys")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, ""))
	defer tg.Close()
	long := strings.Repeat("k", 1024)
	keys := []string{long, "фото/снимок.jpg", "A.jpg", "a.jpg"}
	var items []delivery.Item
	for i, k := range keys {
		it := targettest.Item("b", k, event.ObjectCreatedPut, i)
		it.Key = "b/" + k
		items = append(items, it)
	}
	if err := tg.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	got := state(t, db, table)
	if len(got) != len(keys) {
		t.Fatalf("got %d rows, want %d", len(got), len(keys))
	}
	for _, k := range keys {
		if _, ok := got["b/"+k]; !ok {
			t.Errorf("row %.40q missing", "b/"+k)
		}
	}
	// Delete the long key.
	del := targettest.Item("b", long, event.ObjectRemovedDelete, 9)
	del.Key = "b/" + long
	if err := tg.Send(context.Background(), []delivery.Item{del}); err != nil {
		t.Fatal(err)
	}
	if _, ok := state(t, db, table)["b/"+long]; ok {
		t.Fatal("the long key's row is still there after its delete")
	}
}

func TestPartialFailure(t *testing.T) {
	for _, format := range []string{FormatNamespace, FormatAccess} {
		t.Run(format, func(t *testing.T) {
			table := tableName("partial_" + format)
			db := testDB(t, table)
			tg := newTarget(t, testConfig(table, format))
			defer tg.Close()
			items := []delivery.Item{
				targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1),
				targettest.Item("b", "2.jpg", event.ObjectCreatedPut, 2),
				targettest.Item("b", "3.jpg", event.ObjectCreatedPut, 3),
				targettest.Item("b", "4.jpg", event.ObjectCreatedPut, 4),
			}
			items[2].Record = json.RawMessage(`{"eventName": "s3:ObjectCreated:Put", "broken`)
			err := tg.Send(context.Background(), items)
			var be *delivery.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 2 || !delivery.IsPermanent(be.Failed[0].Err) {
				t.Fatalf("Send: got %v, want a BatchError with item 2 permanent", err)
			}
			var n int
			if err := db.QueryRow("SELECT COUNT(*) FROM `" + table + "`").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Fatalf("got %d rows, want 3", n)
			}
		})
	}
}

// TestPoisonQuarantined runs a bad item through the engine: it is
// quarantined and the items around it are delivered.
func TestPoisonQuarantined(t *testing.T) {
	table := tableName("poison")
	db := testDB(t, table)
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	eng := delivery.New(l, delivery.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	const id = "arn:minio:sqs::1:mysql"
	if err := eng.Add(delivery.Spec{ID: id, Target: newTarget(t, testConfig(table, "")), Namespace: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var entries []*wal.Entry
	for i := 0; i < 10; i++ {
		e := targettest.Entry(targettest.Record("b", fmt.Sprintf("%d.jpg", i), event.ObjectCreatedPut, i), id)
		if i == 4 {
			e.Data = []byte(`{"broken`)
		}
		entries = append(entries, e)
	}
	if _, err := l.Append(ctx, entries...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		q := eng.Stats()[0].Quarantined
		if q == 1 && len(state(t, db, table)) == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d quarantined and %d rows, want 1 and 9", q, len(state(t, db, table)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWrongShapedTable(t *testing.T) {
	table := tableName("wrong")
	db := testDB(t, table)
	if _, err := db.Exec("CREATE TABLE `" + table + "` (key_name VARCHAR(100) PRIMARY KEY, data TEXT)"); err != nil {
		t.Fatal(err)
	}
	tg := newTarget(t, testConfig(table, ""))
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1)})
	if err == nil || !delivery.IsPermanent(err) || !strings.Contains(err.Error(), table) || !strings.Contains(err.Error(), "value") {
		t.Fatalf("Send: got %v, want a permanent error naming %s and column value", err, table)
	}
	// A namespace table whose key_name is not unique cannot be upserted.
	if _, err := db.Exec("DROP TABLE `" + table + "`"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE `" + table + "` (key_name VARCHAR(100), value JSON)"); err != nil {
		t.Fatal(err)
	}
	tg2 := newTarget(t, testConfig(table, ""))
	defer tg2.Close()
	err = tg2.Send(context.Background(), []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1)})
	if err == nil || !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "key_name") {
		t.Fatalf("Send: got %v, want a permanent error naming key_name", err)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	testenv.Require(t, "mariadb", addr)
	cfg := testConfig(tableName("secret"), "")
	cfg.Password = "hunter22-wrong"
	tg := newTarget(t, cfg)
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1)})
	if err == nil || delivery.IsPermanent(err) {
		t.Fatalf("Send with a wrong password: got %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("error leaks the password: %s", err)
	}
	// Nothing listens on port 1: a connection error, also retryable.
	cfg.DSNString = "relay:hunter22-wrong@tcp(127.0.0.1:1)/miniodb"
	tg2 := newTarget(t, cfg)
	defer tg2.Close()
	err = tg2.Send(context.Background(), []delivery.Item{targettest.Item("b", "1.jpg", event.ObjectCreatedPut, 1)})
	if err == nil || delivery.IsPermanent(err) || strings.Contains(err.Error(), "hunter22") {
		t.Fatalf("Send to a closed port: got %v, want a retryable error without the password", err)
	}
}

func TestNewDoesNotDial(t *testing.T) {
	start := time.Now()
	tg, err := New(Config{Table: "t", Host: "192.0.2.1", Port: "3306", User: "u", Database: "d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("New took %v, want no network I/O", d)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Database: "d"}, "table"},
		{Config{Table: "a;drop", Database: "d"}, "table"},
		{Config{Table: "a`b", Database: "d"}, "table"},
		{Config{Table: "t"}, "database"},
		{Config{Table: "t", Database: "d", Format: "json"}, "format"},
		{Config{Table: "t", Database: "d", Port: "x"}, "port"},
		{Config{Table: "t", DSNString: "nonsense"}, "dsnString"},
		{Config{Table: "t", DSNString: "u:p@tcp(h:3306)/"}, "dsnString"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	ok := Config{Table: "minio_images", Host: "h", Port: "3306", User: "root", Password: "password", Database: "miniodb"}
	if err := ok.Validate(); err != nil || !ok.Namespace() {
		t.Errorf("seed example: Validate = %v, Namespace = %v; want nil, true", err, ok.Namespace())
	}
	acc := Config{Format: "access", Table: "t", DSNString: "u:p@tcp(h:3306)/db?tls=skip-verify"}
	if err := acc.Validate(); err != nil || acc.Namespace() {
		t.Errorf("access: Validate = %v, Namespace = %v; want nil, false", err, acc.Namespace())
	}
	t.Setenv(PasswordEnv, "from-env")
	mc, err := (&Config{Table: "t", User: "u", Database: "d"}).driverConfig()
	if err != nil || mc.Passwd != "from-env" {
		t.Errorf("password from %s: got %v, want from-env", PasswordEnv, err)
	}
}

// TestModel runs the model test (targettest.RunModel) against a table.
func TestModel(t *testing.T) {
	targettest.RunModel(t, namespaceHarness(t, tableName("model")), targettest.ModelOptions{Rounds: 9})
}

// TestAccessTimeWithoutEventTime: a record without eventTime is stored with
// the time it entered the log, never the time of the send.
func TestAccessTimeWithoutEventTime(t *testing.T) {
	table := tableName("notime")
	db := testDB(t, table)
	tg := newTarget(t, testConfig(table, FormatAccess))
	defer tg.Close()
	appended := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	it := delivery.Item{Seq: 1, Key: "b/k", EventName: event.ObjectCreatedPut, AppendTime: appended,
		Record: []byte(`{"eventVersion":"2.0","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)}
	if err := tg.Send(context.Background(), []delivery.Item{it}); err != nil {
		t.Fatal(err)
	}
	var got []string
	query(t, db, "SELECT DATE_FORMAT(event_time, '%Y-%m-%d %H:%i:%s.%f') FROM `"+table+"`", func(r *sql.Rows) error {
		var s string
		err := r.Scan(&s)
		got = append(got, s)
		return err
	})
	if want := "2021-03-04 05:06:07.000008"; len(got) != 1 || got[0] != want {
		t.Fatalf("event_time: got %q, want [%s] (the append time)", got, want)
	}
}
