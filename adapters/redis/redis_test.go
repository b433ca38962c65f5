package redis

import (
	"context"
	"encoding/json"
	"errors"
	"net"
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

// namespaceHarness is the suite's harness for a namespace hash at key.
func namespaceHarness(key string) targettest.Harness {
	return targettest.Harness{
		Features: targettest.Features{Namespace: true},
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Format: "namespace", Address: addr, Key: key, Timeout: "2s"})
		},
		State: func(t testing.TB) map[string][]byte { return hash(t, key) },
		Stop:  stopRedis,
		Start: startRedis,
	}
}

func TestConformanceNamespace(t *testing.T) {
	requireRedis(t)
	targettest.Run(t, namespaceHarness(uniqueKey(t, "ns")))
}

// TestModel runs the model test (targettest.RunModel) against a hash.
func TestModel(t *testing.T) {
	requireRedis(t)
	targettest.RunModel(t, namespaceHarness(uniqueKey(t, "model")), targettest.ModelOptions{Seed: 2026})
}

// TestModelKindInFlight runs the model test with the kind's default
// in-flight window (Kind.InFlight, 4), as the relay runs the target: the
// hash still equals the model through outages, and an outage's backlog is
// still written with at most one write per key.
func TestModelKindInFlight(t *testing.T) {
	requireRedis(t)
	if Kind.InFlight < 2 {
		t.Fatalf("Kind.InFlight: got %d, want the pipelined default (4)", Kind.InFlight)
	}
	targettest.RunModel(t, namespaceHarness(uniqueKey(t, "model-inflight")),
		targettest.ModelOptions{Seed: 2027, Policy: delivery.Policy{InFlight: Kind.InFlight}})
}

func TestConformanceAccess(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "access")
	targettest.Run(t, targettest.Harness{
		New: func(t testing.TB) delivery.Target {
			return newTarget(t, Config{Enable: true, Format: "access", Address: addr, Key: key, Timeout: "2s"})
		},
		Received: func(t testing.TB) [][]byte { _, b := list(t, key); return b },
		Stop:     stopRedis,
		Start:    startRedis,
	})
}

// TestSeedFormats checks what the seed's redis-cli session shows: HSET of
// "bucket/object" to {"Records":[record]} in a hash, and RPUSH of
// [eventTime, {"Records":[record]}] to a list.
func TestSeedFormats(t *testing.T) {
	requireRedis(t)
	ctx := context.Background()
	key := uniqueKey(t, "seed")
	ns := newTarget(t, Config{Address: addr, Key: key})
	defer ns.Close()
	put := targettest.Item("images", "myphoto.jpg", event.ObjectCreatedPut, 1)
	other := targettest.Item("images", "other.jpg", event.ObjectCreatedPut, 2)
	if err := ns.Send(ctx, []delivery.Item{put, other}); err != nil {
		t.Fatal(err)
	}
	got := hash(t, key)
	want := `{"Records":[` + string(put.Record) + `]}`
	if string(got["images/myphoto.jpg"]) != want || len(got) != 2 {
		t.Fatalf("HGETALL: got %q, want images/myphoto.jpg = %s and one more field", got, want)
	}
	// The seed's own check, with redis-cli.
	if _, err := exec.LookPath("redis-cli"); err == nil {
		h, p, _ := net.SplitHostPort(addr)
		out, err := exec.Command("redis-cli", "-h", h, "-p", p, "HGETALL", key).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "images/myphoto.jpg\n"+want+"\n") {
			t.Fatalf("redis-cli HGETALL: %v:\n%.300s", err, out)
		}
	}
	del := targettest.Item("images", "myphoto.jpg", event.ObjectRemovedDelete, 3)
	if err := ns.Send(ctx, []delivery.Item{del}); err != nil {
		t.Fatal(err)
	}
	if got := hash(t, key); len(got) != 1 || got["images/other.jpg"] == nil {
		t.Fatalf("after the delete, HGETALL: got %q, want only images/other.jpg", got)
	}

	lkey := uniqueKey(t, "seedlist")
	acc := newTarget(t, Config{Format: "access", Address: addr, Key: lkey})
	defer acc.Close()
	if err := acc.Send(ctx, []delivery.Item{put, del}); err != nil {
		t.Fatal(err)
	}
	times, bodies := list(t, lkey)
	if len(bodies) != 2 || string(bodies[0]) != want {
		t.Fatalf("LRANGE: got %q, want 2 items, the first %s", bodies, want)
	}
	var r event.Record
	json.Unmarshal(put.Record, &r)
	if ts, err := time.Parse(time.RFC3339Nano, times[0]); err != nil || !ts.Equal(r.Time()) {
		t.Fatalf("item time: got %q, want %s", times[0], r.EventTime)
	}
}

func TestWrongType(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "wrongtype")
	do(t, "SET", key, "x")
	tg := newTarget(t, Config{Address: addr, Key: key})
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
	want := "redis: key " + key + " is a string, want a hash"
	if !delivery.IsPermanent(err) || err.Error() != want {
		t.Fatalf("Send: got %v, want permanent %q", err, want)
	}
	acc := newTarget(t, Config{Format: "access", Address: addr, Key: key})
	defer acc.Close()
	err = acc.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
	if !delivery.IsPermanent(err) || !strings.Contains(err.Error(), "want a list") {
		t.Fatalf("Send: got %v, want permanent \"... want a list\"", err)
	}
	// Fixed by an operator: the next send goes through.
	do(t, "DEL", key)
	if err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)}); err != nil {
		t.Fatalf("Send after DEL: %v", err)
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	requireRedis(t)
	for _, a := range []string{"127.0.0.1:1", addr} {
		tg := newTarget(t, Config{Address: a, Key: "k", Password: "hunter22-secret", User: "nobody", Timeout: "2s"})
		err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)})
		tg.Close()
		if err == nil {
			t.Fatalf("%s: send with a bad password succeeded", a)
		}
		if strings.Contains(err.Error(), "hunter22") || !strings.HasPrefix(err.Error(), "redis: ") {
			t.Fatalf("%s: error leaks the secret or lacks the prefix: %s", a, err)
		}
		if delivery.IsPermanent(err) {
			t.Fatalf("%s: got a permanent error, want a retryable one: %v", a, err)
		}
	}
}

func TestPasswordFromEnv(t *testing.T) {
	t.Setenv(PasswordEnv, "from-env")
	tg := newTarget(t, Config{Address: addr, Key: "k"})
	if tg.password != "from-env" {
		t.Fatalf("password: got %q, want the value of %s", tg.password, PasswordEnv)
	}
}

func TestCanceledContext(t *testing.T) {
	requireRedis(t)
	tg := newTarget(t, Config{Address: addr, Key: uniqueKey(t, "ctx")})
	defer tg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tg.Send(ctx, []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)}); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("Send with a canceled context: got %v, want a retryable error", err)
	}
	if err := tg.Send(context.Background(), []delivery.Item{targettest.Item("b", "o", event.ObjectCreatedPut, 1)}); err != nil {
		t.Fatalf("Send after the canceled one: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   Config
		field string
	}{
		{Config{Key: "k"}, "address"},
		{Config{Address: "localhost", Key: "k"}, "address"},
		{Config{Address: "localhost:6379"}, "key"},
		{Config{Address: "localhost:6379", Key: "k", Format: "json"}, "format"},
		{Config{Address: "localhost:6379", Key: "k", DB: -1}, "db"},
		{Config{Address: "localhost:6379", Key: "k", TLSFiles: kit.TLSFiles{ClientKey: "x"}}, "clientCert"},
		{Config{Address: "localhost:6379", Key: "k", Timeout: "soon"}, "timeout"},
	} {
		var fe *kit.FieldError
		if err := c.cfg.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Validate(%+v) = %v, want an error on %s", c.cfg, err, c.field)
		}
	}
	var cfg Config
	seed := `{"enable": true, "format": "namespace", "address": "127.0.0.1:6379", "password": "yoursecret", "key": "bucketevents"}`
	if err := json.Unmarshal([]byte(seed), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || !cfg.Namespace() || cfg.Key != "bucketevents" || cfg.Password != "yoursecret" {
		t.Fatalf("seed example: %+v, Validate = %v", cfg, err)
	}
	for f, want := range map[string]bool{"": true, "namespace": true, "access": false} {
		if got := (&Config{Format: f}).Namespace(); got != want {
			t.Errorf("Namespace() with format %q: got %v, want %v", f, got, want)
		}
	}
}

// TestUncoalescedBatch: a batch holding several events of one key (a
// target used without the engine's coalescing) ends in the last one's
// state.
func TestUncoalescedBatch(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "uncoalesced")
	tg := newTarget(t, Config{Address: addr, Key: key})
	defer tg.Close()
	err := tg.Send(context.Background(), []delivery.Item{
		targettest.Item("b", "x", event.ObjectCreatedPut, 1), targettest.Item("b", "x", event.ObjectRemovedDelete, 2),
		targettest.Item("b", "y", event.ObjectRemovedDelete, 3), targettest.Item("b", "y", event.ObjectCreatedPut, 4),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := hash(t, key); len(got) != 1 || got["b/y"] == nil {
		t.Fatalf("HGETALL: got %q, want only b/y", got)
	}
}

// noTimeItem is a put of b/k whose record has no eventTime, appended to the
// log at appended.
func noTimeItem(appended time.Time) delivery.Item {
	return delivery.Item{Seq: 1, Key: "b/k", EventName: event.ObjectCreatedPut, AppendTime: appended,
		Record: []byte(`{"eventVersion":"2.0","eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}`)}
}

// TestAccessTimeWithoutEventTime: a record without eventTime is stored with
// the time it entered the log, never the time of the send (a backlog
// drained after an outage must not carry the drain's time).
func TestAccessTimeWithoutEventTime(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "notime")
	acc := newTarget(t, Config{Format: "access", Address: addr, Key: key})
	defer acc.Close()
	appended := time.Date(2021, 3, 4, 5, 6, 7, 8000, time.UTC)
	if err := acc.Send(context.Background(), []delivery.Item{noTimeItem(appended)}); err != nil {
		t.Fatal(err)
	}
	times, _ := list(t, key)
	if len(times) != 1 {
		t.Fatalf("LRANGE: got %d items, want 1", len(times))
	}
	if ts, err := time.Parse(time.RFC3339Nano, times[0]); err != nil || !ts.Equal(appended) {
		t.Fatalf("item time: got %q, want %s (the append time)", times[0], appended.Format(time.RFC3339Nano))
	}
}
