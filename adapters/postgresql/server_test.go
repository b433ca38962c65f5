package postgresql

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bucketrelay/bucketrelay/internal/testenv"
)

// The test server, as scripts/services.sh starts it.
var (
	host     = testenv.Getenv("RELAY_TEST_POSTGRES_HOST", "127.0.0.1")
	port     = testenv.Getenv("RELAY_TEST_POSTGRES_PORT", "5432")
	password = testenv.Getenv("RELAY_TEST_POSTGRES_PASSWORD", "password")
)

// seedConfig is the seed's example configuration, with table.
func seedConfig(format, table string) Config {
	return Config{Enable: true, Format: format, ConnectionString: "sslmode=disable", Table: table,
		Host: host, Port: port, User: "postgres", Password: password, Database: "minio_events", Timeout: "5s"}
}

func requirePostgres(t testing.TB) {
	t.Helper()
	testenv.Require(t, "postgres", host+":"+port)
}

// db opens a connection for the test's own queries (psql's view).
func db(t testing.TB) *pgx.Conn {
	t.Helper()
	cfg := seedConfig("", "x")
	cc, err := cfg.connConfig("")
	if err != nil {
		t.Fatal(err)
	}
	var c *pgx.Conn
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err = pgx.ConnectConfig(ctx, cc)
		cancel()
		if err == nil {
			return c
		}
		if i > 40 { // the server may be starting
			t.Fatalf("connecting to postgres: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func exec1(t testing.TB, sql string, args ...any) {
	t.Helper()
	c := db(t)
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// uniqueTable returns a fresh table name, dropped when the test ends.
func uniqueTable(t testing.TB, name string) string {
	t.Helper()
	tb := fmt.Sprintf("relaytest_%s_%d_%d", name, os.Getpid(), time.Now().UnixNano()%1e9)
	exec1(t, "DROP TABLE IF EXISTS "+tb)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg := seedConfig("", "x")
		cc, _ := cfg.connConfig("")
		if c, err := pgx.ConnectConfig(ctx, cc); err == nil {
			c.Exec(ctx, "DROP TABLE IF EXISTS "+tb)
			c.Close(ctx)
		}
	})
	return tb
}

// namespaceRows returns "select * from table", as the seed's psql session
// shows it: key and value.
func namespaceRows(t testing.TB, table string) map[string][]byte {
	t.Helper()
	c := db(t)
	defer c.Close(context.Background())
	out := map[string][]byte{}
	rows, err := c.Query(context.Background(), "SELECT * FROM "+table)
	if err != nil {
		if strings.Contains(err.Error(), "42P01") {
			return out // not created yet
		}
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = []byte(v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// accessRows returns the rows of an access table in insertion order
// (ctid order: the table is only ever appended to).
func accessRows(t testing.TB, table string) (times []time.Time, data [][]byte) {
	t.Helper()
	c := db(t)
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT * FROM "+table+" ORDER BY ctid")
	if err != nil {
		if strings.Contains(err.Error(), "42P01") {
			return nil, nil
		}
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ts time.Time
		var d string
		if err := rows.Scan(&ts, &d); err != nil {
			t.Fatal(err)
		}
		times = append(times, ts)
		data = append(data, []byte(d))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return times, data
}

func stopPostgres(t testing.TB)  { testenv.Services(t, "stop", "postgres") }
func startPostgres(t testing.TB) { testenv.Services(t, "start", "postgres") }
