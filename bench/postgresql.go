package main

// Scenario "postgresql": the PostgreSQL target in both formats against the
// real server (scripts/services.sh start postgres: 127.0.0.1:5432, user
// postgres, password "password", database minio_events): delivered rate
// through log + engine + target beside a direct pgx client sending the same
// batches, and the drain after the server was stopped while a backlog built
// up. The scenario code is storeBench, in stores.go.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bucketrelay/bucketrelay/adapters/postgresql"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
)

func init() { harness.Register("postgresql", runPostgreSQL) }

// benchPGConfig returns the target's configuration; table names carry the
// process id, so concurrent runs do not share data.
func benchPGConfig(ns bool) postgresql.Config {
	c := postgresql.Config{Enable: true, Format: "access", ConnectionString: "sslmode=disable", Table: fmt.Sprintf("relaybench_access_%d", os.Getpid()),
		Host: "127.0.0.1", Port: "5432", User: "postgres", Password: "password", Database: "minio_events"}
	if ns {
		c.Format, c.Table = "namespace", fmt.Sprintf("relaybench_ns_%d", os.Getpid())
	}
	return c
}

func benchPGConn(ctx context.Context) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig("host=127.0.0.1 port=5432 user=postgres password=password dbname=minio_events sslmode=disable connect_timeout=5")
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cc)
}

func runPostgreSQL(ctx context.Context, o harness.Options) (harness.Result, error) {
	exec := func(sql string) error {
		c, err := benchPGConn(ctx)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctx, sql)
		return err
	}
	schema := func(ns bool) string {
		if ns {
			return benchPGConfig(ns).Table + " (key VARCHAR PRIMARY KEY, value JSONB)"
		}
		return benchPGConfig(ns).Table + " (event_time TIMESTAMPTZ NOT NULL, event_data JSONB)"
	}
	sb := &storeBench{
		name:   "postgresql",
		client: "pgx, one INSERT … SELECT FROM unnest (access) or upsert (namespace) per batch,",
		// The kind's default window (adapters/postgresql/kind.go); the
		// direct client writes on as many connections, each a batch at a
		// time.
		inFlight: postgresql.Kind.InFlight,
		rateGoal: func(direct float64) string { return fmt.Sprintf("≥ %.0f (80%% of direct)", 0.8*direct) },
		newTarget: func(ns bool) (delivery.Target, error) {
			return postgresql.New(benchPGConfig(ns), harness.QuietLogger())
		},
		reset: func(ns bool) error {
			if err := exec("CREATE TABLE IF NOT EXISTS " + schema(ns)); err != nil {
				return err
			}
			return exec("TRUNCATE " + benchPGConfig(ns).Table)
		},
		direct: func(ns bool) (func(context.Context, []delivery.Item) error, func(), error) {
			c, err := benchPGConn(ctx)
			if err != nil {
				return nil, nil, err
			}
			table := benchPGConfig(ns).Table
			upsert := "INSERT INTO " + table + " (key, value) SELECT * FROM unnest($1::text[], $2::jsonb[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
			insert := "INSERT INTO " + table + " (event_time, event_data) SELECT t, d FROM unnest($1::timestamptz[], $2::jsonb[]) WITH ORDINALITY AS u(t, d, n) ORDER BY n"
			send := func(ctx context.Context, items []delivery.Item) error {
				keys := make([]string, len(items))
				times := make([]time.Time, len(items))
				vals := make([][]byte, len(items))
				for i := range items {
					keys[i], times[i] = items[i].Key, items[i].EventTime
					vals[i] = event.AppendRecords(nil, items[i].Record)
				}
				if ns {
					_, err := c.Exec(ctx, upsert, keys, vals)
					return err
				}
				_, err := c.Exec(ctx, insert, times, vals)
				return err
			}
			return send, func() { c.Close(context.Background()) }, nil
		},
		stop:  func() error { return harness.Services("stop", "postgres") },
		start: func() error { return harness.Services("start", "postgres") },
		ids: func(ns bool) (map[string]uint64, []uint64, error) {
			c, err := benchPGConn(ctx)
			if err != nil {
				return nil, nil, err
			}
			defer c.Close(context.Background())
			const rid = "->'Records'->0->'responseElements'->>'x-amz-request-id'"
			if ns {
				rows, err := c.Query(ctx, "SELECT key, value"+rid+" FROM "+benchPGConfig(ns).Table)
				if err != nil {
					return nil, nil, err
				}
				defer rows.Close()
				out, err := scanLatest(rows)
				return out, nil, err
			}
			rows, err := c.Query(ctx, "SELECT event_data"+rid+" FROM "+benchPGConfig(ns).Table+" ORDER BY ctid")
			if err != nil {
				return nil, nil, err
			}
			defer rows.Close()
			ids, err := scanOrdered(rows)
			return nil, ids, err
		},
	}
	if err := exec("SELECT 1"); err != nil {
		return harness.Result{}, fmt.Errorf("postgres is not reachable (scripts/services.sh start postgres): %w", err)
	}
	res, err := sb.run(ctx, o)
	for _, ns := range []bool{true, false} {
		exec("DROP TABLE IF EXISTS " + benchPGConfig(ns).Table)
	}
	return res, err
}
