package main

// Scenario "mysql": the MySQL target in both formats against the real
// server (scripts/services.sh start mariadb: 127.0.0.1:3306, user relay,
// password "password", database miniodb): delivered rate through log +
// engine + target beside a direct go-sql-driver/mysql client writing the
// same batches the same way (one transaction of 500-row statements), and
// the drain after the server was stopped while a backlog built up. The
// scenario code is storeBench, in stores.go.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/bucketrelay/bucketrelay/adapters/mysql"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

func init() { harness.Register("mysql", runMySQL) }

func benchMySQLConfig(ns bool) mysql.Config {
	c := mysql.Config{Enable: true, Format: "access", Table: "relaybench_access",
		Host: "127.0.0.1", Port: "3306", User: "relay", Password: "password", Database: "miniodb"}
	if ns {
		c.Format, c.Table = "namespace", "relaybench_ns"
	}
	return c
}

func benchMySQLDB() (*sql.DB, error) {
	mc := gomysql.NewConfig()
	mc.Net, mc.Addr, mc.User, mc.Passwd, mc.DBName = "tcp", "127.0.0.1:3306", "relay", "password", "miniodb"
	mc.InterpolateParams = true
	mc.Timeout = 5 * time.Second
	mc.Logger = &gomysql.NopLogger{}
	conn, err := gomysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}

func runMySQL(ctx context.Context, o harness.Options) (harness.Result, error) {
	db, err := benchMySQLDB()
	if err != nil {
		return harness.Result{}, err
	}
	defer db.Close()
	schema := func(ns bool) string {
		if ns {
			return "relaybench_ns (key_name VARBINARY(2048) NOT NULL PRIMARY KEY, value JSON)"
		}
		return "relaybench_access (event_time DATETIME(6) NOT NULL, event_data JSON)"
	}
	sb := &storeBench{
		name:   "mysql",
		client: "go-sql-driver/mysql, one transaction of 500-row INSERTs (namespace: ON DUPLICATE KEY UPDATE) per batch,",
		// The kind's default window (adapters/mysql/kind.go); the direct
		// client writes on as many connections, each a batch at a time.
		inFlight: mysql.Kind.InFlight,
		rateGoal: func(direct float64) string { return fmt.Sprintf("≥ %.0f (80%% of direct)", 0.8*direct) },
		newTarget: func(ns bool) (delivery.Target, error) {
			return mysql.New(benchMySQLConfig(ns), harness.QuietLogger())
		},
		reset: func(ns bool) error {
			if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+schema(ns)); err != nil {
				return err
			}
			_, err := db.ExecContext(ctx, "TRUNCATE TABLE "+benchMySQLConfig(ns).Table)
			return err
		},
		direct: func(ns bool) (func(context.Context, []delivery.Item) error, func(), error) {
			ddb, err := benchMySQLDB()
			if err != nil {
				return nil, nil, err
			}
			table := benchMySQLConfig(ns).Table
			send := func(ctx context.Context, items []delivery.Item) error {
				tx, err := ddb.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				for len(items) > 0 {
					n := min(len(items), 500)
					var q strings.Builder
					args := make([]any, 0, 2*n)
					if ns {
						q.WriteString("INSERT INTO " + table + " (key_name, value) VALUES ")
					} else {
						q.WriteString("INSERT INTO " + table + " (event_time, event_data) VALUES ")
					}
					for i := range n {
						if i > 0 {
							q.WriteByte(',')
						}
						q.WriteString("(?,?)")
						v := string(event.AppendRecords(nil, items[i].Record))
						if ns {
							args = append(args, items[i].Key, v)
						} else {
							args = append(args, items[i].EventTime, v)
						}
					}
					if ns {
						q.WriteString(" ON DUPLICATE KEY UPDATE value = VALUES(value)")
					}
					if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
						return err
					}
					items = items[n:]
				}
				return tx.Commit()
			}
			return send, func() { ddb.Close() }, nil
		},
		stop:  func() error { return harness.Services("stop", "mariadb") },
		start: func() error { return harness.Services("start", "mariadb") },
		ids: func(ns bool) (map[string]uint64, []uint64, error) {
			const rid = "JSON_UNQUOTE(JSON_EXTRACT(%s, '$.Records[0].responseElements.\"x-amz-request-id\"'))"
			if ns {
				rows, err := db.QueryContext(ctx, "SELECT key_name, "+fmt.Sprintf(rid, "value")+" FROM relaybench_ns")
				if err != nil {
					return nil, nil, err
				}
				defer rows.Close()
				out, err := scanLatest(rows)
				return out, nil, err
			}
			// No primary key: InnoDB keeps rows in insertion order.
			rows, err := db.QueryContext(ctx, "SELECT "+fmt.Sprintf(rid, "event_data")+" FROM relaybench_access")
			if err != nil {
				return nil, nil, err
			}
			defer rows.Close()
			ids, err := scanOrdered(rows)
			return nil, ids, err
		},
	}
	if err := db.PingContext(ctx); err != nil {
		return harness.Result{}, fmt.Errorf("mariadb is not reachable (scripts/services.sh start mariadb): %w", err)
	}
	res, err := sb.run(ctx, o)
	for _, ns := range []bool{true, false} {
		db.Exec("DROP TABLE IF EXISTS " + benchMySQLConfig(ns).Table)
	}
	return res, err
}
