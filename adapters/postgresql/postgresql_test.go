package postgresql

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

func newTarget(t testing.TB, cfg Config) *Target {
	t.Helper()
	tg, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// namespaceHarness is the suite's harness for a namespace table.
func namespaceHarness(table string) targettest.Harness {
	return targettest.Harness{
		Features: targettest.Features{Namespace: true},
		New:      func(t testing.TB) delivery.Target { return newTarget(t, seedConfig("namespace", table)) },
		State:    func(t testing.TB) map[string][]byte { return namespaceRows(t, table) },
		Stop:     stopPostgres,
		Start:    startPostgres,
	}
}

func TestConformanceNamespace(t *testing.T) {
	requirePostgres(t)
	targettest.Run(t, namespaceHarness(uniqueTable(t, "ns")))
}

// TestModel runs the model test (targettest.RunModel) against a table.
func TestModel(t *testing.T) {
	requirePostgres(t)
	targettest.RunModel(t, namespaceHarness(uniqueTable(t, "model")), targettest.ModelOptions{Rounds: 9, Seed: 2026})
}

func TestConformanceAccess(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "access")
	targettest.Run(t, targettest.Harness{
		New:      func(t testing.TB) delivery.Target { return newTarget(t, seedConfig("access", table)) },
		Received: func(t testing.TB) [][]byte { _, d := accessRows(t, table); return d },
		Stop:     stopPostgres,
		Start:    startPostgres,
	})
}

// TestSeedFormats checks what the seed's "select * from bucketevents"
// shows: a (key, value) row per object, value {"Records":[record]}; and for
// the access format one (event_time, event_data) row per event.
func TestSeedFormats(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	table := uniqueTable(t, "seed")
	ns := newTarget(t, seedConfig("namespace", table))
	defer ns.Close()
	put := targettest.Item("images", "myphoto.jpg", event.ObjectCreatedPut, 1)
	other := targettest.Item("images", "other.jpg", event.ObjectCreatedPut, 2)
	if err := ns.Send(ctx, []delivery.Item{put, other}); err != nil {
		t.Fatal(err)
	}
	got := namespaceRows(t, table)
	if len(got) != 2 || !jsonEqual(got["images/myphoto.jpg"], `{"Records":[`+string(put.Record)+`]}`) {
		t.Fatalf("select * from %s: got %q, want images/myphoto.jpg and images/other.jpg", table, got)
	}
	del := targettest.Item("images", "myphoto.jpg", event.ObjectRemovedDelete, 3)
	put2 := targettest.Item("images", "other.jpg", event.ObjectCreatedPut, 4)
	if err := ns.Send(ctx, []delivery.Item{del, put2}); err != nil {
		t.Fatal(err)
	}
	got = namespaceRows(t, table)
	if len(got) != 1 || !jsonEqual(got["images/other.jpg"], `{"Records":[`+string(put2.Record)+`]}`) {
		t.Fatalf("after delete and overwrite: got %q, want only images/other.jpg, overwritten", got)
	}

	// The seed's own check, with psql.
	if _, err := exec.LookPath("psql"); err == nil {
		cmd := exec.Command("psql", "-h", host, "-p", port, "-U", "postgres", "-d", "minio_events", "-c", "select * from "+table)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "images/other.jpg | {\"Records\": [{") || !strings.Contains(string(out), "(1 row)") {
			t.Fatalf("psql: %v:\n%s", err, out)
		}
	}

	at := uniqueTable(t, "seedaccess")
	acc := newTarget(t, seedConfig("access", at))
	defer acc.Close()
	if err := acc.Send(ctx, []delivery.Item{put, del, put2}); err != nil {
		t.Fatal(err)
	}
	times, data := accessRows(t, at)
	if len(data) != 3 || !jsonEqual(data[0], `{"Records":[`+string(put.Record)+`]}`) || !jsonEqual(data[2], `{"Records":[`+string(put2.Record)+`]}`) {
		t.Fatalf("access rows: got %q, want the 3 events in order", data)
	}
	if !times[0].Equal(put.EventTime) {
		t.Fatalf("event_time: got %v, want %v", times[0], put.EventTime)
	}
}

func jsonEqual(a []byte, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestPartialFailure sends a batch in which one record holds \u0000,
// which JSONB refuses: only that item fails, for good; the others are
// stored.
func TestPartialFailure(t *testing.T) {
	requirePostgres(t)
	for _, format := range []string{"namespace", "access"} {
		t.Run(format, func(t *testing.T) {
			table := uniqueTable(t, "partial")
			tg := newTarget(t, seedConfig(format, table))
			defer tg.Close()
			var items []delivery.Item
			for i, k := range []string{"a.jpg", "poison.jpg", "b.jpg"} {
				items = append(items, targettest.Item("images", k, event.ObjectCreatedPut, i))
			}
			items[1].Record = json.RawMessage(strings.Replace(string(items[1].Record), `"minio:s3"`, `"minio\u0000s3"`, 1))
			err := tg.Send(context.Background(), items)
			var be *delivery.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 1 || !delivery.IsPermanent(be.Failed[0].Err) {
				t.Fatalf("Send: got %v, want a BatchError with item 1 permanent", err)
			}
			n := 0
			if format == "namespace" {
				n = len(namespaceRows(t, table))
			} else {
				_, d := accessRows(t, table)
				n = len(d)
			}
			if n != 2 {
				t.Fatalf("table holds %d rows, want 2", n)
			}
		})
	}
}

func TestWrongSchema(t *testing.T) {
	requirePostgres(t)
	for _, c := range []struct{ format, cols, want string }{
		{"namespace", "key TEXT PRIMARY KEY, data JSONB", "has no column value"},
		{"namespace", "key TEXT PRIMARY KEY, value INT", "column value is integer"},
		{"access", "event_time TEXT, event_data JSONB", "column event_time is text"},
		{"access", "event_time TIMESTAMPTZ, event_data JSONB, extra INT NOT NULL", "column extra is NOT NULL"},
	} {
		table := uniqueTable(t, "schema")
		exec1(t, "CREATE TABLE "+table+" ("+c.cols+")")
		tg := newTarget(t, seedConfig(c.format, table))
		err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
		tg.Close()
		if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "table "+table) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s (%s): got %v, want a permanent error naming the table and %q", c.format, c.cols, err, c.want)
		}
	}
	// A table without a unique key cannot take upserts.
	table := uniqueTable(t, "nokey")
	exec1(t, "CREATE TABLE "+table+" (key VARCHAR, value JSONB)")
	tg := newTarget(t, seedConfig("namespace", table))
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "unique") {
		t.Errorf("table without a primary key: got %v, want a permanent error", err)
	}
	// Extra columns with defaults are fine (an id for ordering).
	table = uniqueTable(t, "extra")
	exec1(t, "CREATE TABLE "+table+" (id BIGSERIAL PRIMARY KEY, event_time TIMESTAMPTZ NOT NULL, event_data JSONB)")
	acc := newTarget(t, seedConfig("access", table))
	defer acc.Close()
	if err := acc.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)}); err != nil {
		t.Errorf("access table with an id column: %v", err)
	}
}

// TestTableDroppedWhileRunning: the table is created again.
func TestTableDroppedWhileRunning(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "dropped")
	tg := newTarget(t, seedConfig("namespace", table))
	defer tg.Close()
	send := func() error {
		return tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	exec1(t, "DROP TABLE "+table)
	if err := send(); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("send after DROP TABLE: got %v, want a retryable error", err)
	}
	if err := send(); err != nil {
		t.Fatalf("second send after DROP TABLE: %v", err)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	requirePostgres(t)
	for _, p := range []string{"1", port} {
		cfg := seedConfig("namespace", "secrets")
		cfg.Port = p
		cfg.Password = "hunter22-secret"
		tg := newTarget(t, cfg)
		err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
		tg.Close()
		if err == nil {
			t.Fatalf("port %s: send with a bad password succeeded", p)
		}
		if strings.Contains(err.Error(), "hunter22") || !strings.HasPrefix(err.Error(), "postgresql: ") || delivery.IsPermanent(err) {
			t.Fatalf("port %s: got %v, want a retryable error without the secret", p, err)
		}
	}
}

func TestConnConfig(t *testing.T) {
	t.Setenv(PasswordEnv, "from-env")
	cfg := Config{Table: "t", ConnectionString: "sslmode=disable application_name=x", Port: "5433", User: "u", Database: "d"}
	tg := newTarget(t, cfg)
	cc := tg.cc
	if cc.Host != DefaultHost || cc.Port != 5433 || cc.User != "u" || cc.Database != "d" || cc.Password != "from-env" || cc.TLSConfig != nil {
		t.Fatalf("got host %q port %d user %q db %q password %q tls %v", cc.Host, cc.Port, cc.User, cc.Database, cc.Password, cc.TLSConfig != nil)
	}
	cfg = Config{Table: "t", ConnectionString: "postgres://a:b@db.example:6000/x?sslmode=disable", Database: "y"}
	tg = newTarget(t, cfg)
	if cc := tg.cc; cc.Host != "db.example" || cc.Port != 6000 || cc.User != "a" || cc.Password != "from-env" || cc.Database != "y" {
		t.Fatalf("URL: got host %q port %d user %q db %q", cc.Host, cc.Port, cc.User, cc.Database)
	}
	cfg = Config{Table: "t", Password: "it's \\ secret"}
	if tg = newTarget(t, cfg); tg.cc.Password != "it's \\ secret" {
		t.Fatalf("quoted password: got %q", tg.cc.Password)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "table"},
		{Config{Table: "bucket-events"}, "table"},
		{Config{Table: "x; drop table y"}, "table"},
		{Config{Table: "1abc"}, "table"},
		{Config{Table: "a.b.c"}, "table"},
		{Config{Table: "t", Format: "json"}, "format"},
		{Config{Table: "t", Port: "http"}, "port"},
		{Config{Table: "t", Timeout: "soon"}, "timeout"},
		{Config{Table: "t", ConnectionString: "sslmode=bogus"}, "connectionString"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	seed := `{"enable": true, "format": "namespace", "connectionString": "sslmode=disable", "table": "bucketevents",
		"host": "127.0.0.1", "port": "5432", "user": "postgres", "password": "password", "database": "minio_events"}`
	var cfg Config
	if err := json.Unmarshal([]byte(seed), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || !cfg.Namespace() {
		t.Fatalf("seed example: %+v, Validate = %v", cfg, err)
	}
	for _, tb := range []string{"bucketevents", "public.bucketevents", "Bucket_Events$1"} {
		if err := (&Config{Table: tb}).Validate(); err != nil {
			t.Errorf("table %q: %v", tb, err)
		}
	}
}

// TestUncoalescedBatch: a batch holding several events of one key (a
// target used without the engine's coalescing) ends in the last one's
// state instead of failing the upsert.
func TestUncoalescedBatch(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "uncoalesced")
	tg := newTarget(t, seedConfig("namespace", table))
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{
		targettest.Item("b", "x", event.ObjectCreatedPut, 1), targettest.Item("b", "x", event.ObjectRemovedDelete, 2),
		targettest.Item("b", "y", event.ObjectRemovedDelete, 3), targettest.Item("b", "y", event.ObjectCreatedPut, 4),
		targettest.Item("b", "y", event.ObjectCreatedPut, 5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := namespaceRows(t, table); len(got) != 1 || got["b/y"] == nil {
		t.Fatalf("rows: got %q, want only b/y", got)
	}
}

// TestAccessTimeWithoutEventTime: a record without eventTime is stored with
// the time it entered the log, never the time of the send.
func TestAccessTimeWithoutEventTime(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "notime")
	acc := newTarget(t, seedConfig("access", table))
	defer acc.Close()
	appended := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	it := delivery.Item{Seq: 1, Key: "b/k", EventName: event.ObjectCreatedPut, AppendTime: appended,
		Record: []byte(`{"eventVersion":"2.0","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)}
	if err := acc.Send(context.Background(), []delivery.Item{it}); err != nil {
		t.Fatal(err)
	}
	times, _ := accessRows(t, table)
	if len(times) != 1 || !times[0].Equal(appended) {
		t.Fatalf("event_time: got %v, want [%v] (the append time)", times, appended)
	}
}
