package redis

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
)

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countWrites makes the target connections of the test count their
// writes.
func countWrites(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := dialTCP
	dialTCP = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := orig(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &n}, nil
	}
	t.Cleanup(func() { dialTCP = orig })
	return &n
}

// TestOneWritePerBatch: a batch of 1,000 events of 1 KiB goes to Redis in
// one write in both formats (it took some 250 through redigo's buffer), and
// Redis stores every one of them.
func TestOneWritePerBatch(t *testing.T) {
	requireRedis(t)
	writes := countWrites(t)
	items := make([]delivery.Item, 1000)
	for i := range items {
		items[i] = targettest.Item("b", fmt.Sprintf("k%04d", i), event.ObjectCreatedPut, i)
		items[i].Record = bytes.Replace(items[i].Record, []byte(`"eventVersion"`), []byte(`"pad":"`+string(bytes.Repeat([]byte{'x'}, 1024-len(items[i].Record)))+`","eventVersion"`), 1)
	}
	for _, format := range []string{"namespace", "access"} {
		t.Run(format, func(t *testing.T) {
			key := uniqueKey(t, "onewrite-"+format)
			tg := newTarget(t, Config{Format: format, Address: addr, Key: key})
			defer tg.Close()
			ctx := context.Background()
			if err := tg.Send(ctx, items[:1]); err != nil { // connects, checks the key's type
				t.Fatal(err)
			}
			writes.Store(0)
			if err := tg.Send(ctx, items); err != nil {
				t.Fatal(err)
			}
			if n := writes.Load(); n != 1 {
				t.Errorf("writes for a batch of %d: got %d, want 1", len(items), n)
			}
			if format == "namespace" {
				got := hash(t, key)
				if len(got) != len(items) {
					t.Fatalf("hash fields: got %d, want %d", len(got), len(items))
				}
				for _, it := range items {
					if want := `{"Records":[` + string(it.Record) + `]}`; string(got[it.Key]) != want {
						t.Fatalf("%s: got %q, want %q", it.Key, got[it.Key], want)
					}
				}
				return
			}
			times, bodies := list(t, key)
			if len(bodies) != 1+len(items) {
				t.Fatalf("list length: got %d, want %d", len(bodies), 1+len(items))
			}
			for i, it := range items {
				want := `{"Records":[` + string(it.Record) + `]}`
				if string(bodies[i+1]) != want || times[i+1] != it.EventTime.Format(time.RFC3339Nano) {
					t.Fatalf("item %d: got [%s, %s], want [%s, %s]", i, times[i+1], bodies[i+1], it.EventTime.Format(time.RFC3339Nano), want)
				}
			}
		})
	}
}

// TestRepeatedKeysWithoutDeletes: a batch of puts that repeats keys (no
// coalescing before the target) leaves each field with its last value, the
// case sendNamespace writes without picking the newest item per key.
func TestRepeatedKeysWithoutDeletes(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "repeated")
	tg := newTarget(t, Config{Address: addr, Key: key})
	defer tg.Close()
	var items []delivery.Item
	for i := range 30 {
		items = append(items, targettest.Item("b", fmt.Sprintf("k%d", i%7), event.ObjectCreatedPut, i))
	}
	if err := tg.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	got := hash(t, key)
	if len(got) != 7 {
		t.Fatalf("fields: got %d, want 7", len(got))
	}
	for i := 23; i < 30; i++ {
		it := items[i]
		if want := `{"Records":[` + string(it.Record) + `]}`; string(got[it.Key]) != want {
			t.Errorf("%s: got %.60q…, want the value of item %d", it.Key, got[it.Key], i)
		}
	}
}

// TestCanceledDuringSend: a context canceled while a large batch is being
// written or answered ends the Send with an error (the connection is
// dropped, not reused with replies pending), and the next Send works.
func TestCanceledDuringSend(t *testing.T) {
	requireRedis(t)
	key := uniqueKey(t, "cancel")
	tg := newTarget(t, Config{Format: "access", Address: addr, Key: key})
	defer tg.Close()
	items := make([]delivery.Item, 1000)
	for i := range items {
		items[i] = targettest.Item("b", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)
	}
	var wg sync.WaitGroup
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(50 * time.Microsecond); cancel() }()
		_ = tg.Send(ctx, items) // either outcome; the connection must stay usable
		wg.Wait()
		cancel()
	}
	do(t, "DEL", key)
	if err := tg.Send(context.Background(), items[:3]); err != nil {
		t.Fatalf("send after canceled sends: %v", err)
	}
	if _, bodies := list(t, key); len(bodies) != 3 {
		t.Fatalf("list length: got %d, want 3", len(bodies))
	}
}
