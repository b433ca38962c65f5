package postgresql

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// counting counts the items of the sends a target acknowledged: the writes
// that reached the store.
type counting struct {
	delivery.Target
	items atomic.Int64
}

func (c *counting) Send(ctx context.Context, items []delivery.Item) error {
	err := c.Target.Send(ctx, items)
	if err == nil {
		c.items.Add(int64(len(items)))
	}
	return err
}

// TestModel pushes random puts, overwrites and deletes over a few keys
// through a log and an engine into the table while the server is stopped and
// started at random, and checks the table against a model that applies
// every event in order. After each outage, the backlog must have been
// written with at most one write per distinct key.
func TestModel(t *testing.T) {
	requirePostgres(t)
	table := uniqueTable(t, "model")
	const id = "arn:minio:sqs::model:postgresql"
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tg := &counting{Target: newTarget(t, seedConfig("namespace", table))}
	eng := delivery.New(l, delivery.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err := eng.Add(delivery.Spec{ID: id, Target: tg, Namespace: true, MaxBatch: 64}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	rng := rand.New(rand.NewPCG(2026, 11))
	model := map[string]string{}
	bucket := fmt.Sprintf("model-%d", time.Now().UnixNano())
	seq := 0
	gen := func(n int) []*wal.Entry {
		out := make([]*wal.Entry, n)
		for i := range out {
			name := event.ObjectCreatedPut
			switch rng.IntN(10) {
			case 0, 1, 2:
				name = event.ObjectRemovedDelete
			case 3:
				name = event.ObjectAccessedGet // no effect on the state
			}
			r := targettest.Record(bucket, fmt.Sprintf("k%02d", rng.IntN(12)), name, seq)
			seq++
			switch name.Op() {
			case event.OpPut:
				model[r.Key()] = r.ResponseElements["x-amz-request-id"]
			case event.OpDelete:
				delete(model, r.Key())
			}
			out[i] = targettest.Entry(r, id)
		}
		return out
	}
	appendAll := func(es []*wal.Entry) {
		if _, err := l.Append(context.Background(), es...); err != nil {
			t.Fatal(err)
		}
	}
	drained := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for eng.Stats()[0].Pending > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("backlog not drained: %+v", eng.Stats()[0])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stopped := false
	defer func() {
		if stopped {
			startPostgres(t)
		}
	}()
	outages := 0
	for round := 0; round < 9; round++ {
		if round%3 == 1 {
			// A clean outage: every event of it lands in one coalescing
			// window, written once per distinct key after the restart.
			drained()
			stopPostgres(t)
			stopped = true
			before := tg.items.Load()
			es := gen(50 + rng.IntN(200))
			appendAll(es)
			keys := map[string]bool{}
			for _, e := range es {
				if event.Name(e.Name).Op() != event.OpNone {
					keys[e.Key] = true
				}
			}
			time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
			startPostgres(t)
			stopped = false
			drained()
			outages++
			if w := tg.items.Load() - before; w > int64(len(keys)) {
				t.Errorf("outage %d: %d writes for %d events over %d keys, want at most %d", outages, w, len(es), len(keys), len(keys))
			}
			continue
		}
		// Events in small appends, the server going away and back at
		// random points.
		for chunk := 0; chunk < 5; chunk++ {
			appendAll(gen(1 + rng.IntN(40)))
			if rng.IntN(6) == 0 {
				if stopped {
					startPostgres(t)
				} else {
					stopPostgres(t)
				}
				stopped = !stopped
			}
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
		if stopped {
			startPostgres(t)
			stopped = false
		}
	}
	drained()
	got := map[string]string{}
	for k, v := range namespaceRows(t, table) {
		var m struct{ Records []event.Record }
		if err := json.Unmarshal(v, &m); err != nil || len(m.Records) != 1 {
			t.Fatalf("row %s is not {\"Records\":[record]}: %.100s", k, v)
		}
		got[k] = m.Records[0].ResponseElements["x-amz-request-id"]
	}
	if len(got) != len(model) {
		t.Errorf("table has %d rows, model %d", len(got), len(model))
	}
	for k, v := range model {
		if got[k] != v {
			t.Errorf("row %s: got %q, want %q", k, got[k], v)
		}
	}
	t.Logf("%d events, %d outages, %d writes", seq, outages, tg.items.Load())
}
