package targettest

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
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// ModelOptions tunes RunModel.
type ModelOptions struct {
	// Rounds of random events; every third round is a clean outage. 0
	// means 12.
	Rounds int
	// Keys is how many object keys the events touch. 0 means 12.
	Keys int
	// Backlog is how many events the final outage appends at once. 0
	// means 2,000.
	Backlog int
	// Seed seeds the random source. 0 means a seed from the clock, logged
	// so a failure can be replayed.
	Seed uint64
	// Policy is the target's delivery policy; the zero value sends one
	// batch at a time. Set InFlight to the kind's default to test the
	// target as the relay runs it.
	Policy delivery.Policy
}

// counting wraps a target and counts the items of the sends it
// acknowledged: the writes that reached the store.
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

// RunModel checks a namespace target against a model: it pushes random
// puts, overwrites, deletes and state-neutral events over a few keys
// through a log and an engine into h's target while the server is stopped
// and started at random, and checks that h.State ends equal to a model that
// applies every event in order. After each outage (a few clean ones and a
// final backlog of o.Backlog events), the backlog must have been written
// with at most one write per distinct key.
//
// h needs New, State, Stop and Start; without Stop or Start the test is
// skipped. h.State must hold only what this test's target wrote.
func RunModel(t *testing.T, h Harness, o ModelOptions) {
	t.Helper()
	if h.Stop == nil || h.Start == nil {
		t.Skip("the model test needs Stop and Start")
	}
	if o.Rounds <= 0 {
		o.Rounds = 12
	}
	if o.Keys <= 0 {
		o.Keys = 12
	}
	if o.Backlog <= 0 {
		o.Backlog = 2000
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", o.Seed)

	const id = "arn:minio:sqs::model:target"
	l, err := wal.Open(filepath.Join(t.TempDir(), "wal.db"), wal.Options{CursorSyncInterval: 5 * time.Millisecond, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tg := &counting{Target: h.New(t)}
	eng := delivery.New(l, delivery.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ShutdownGrace: time.Second})
	if err := eng.Add(delivery.Spec{ID: id, Target: tg, Namespace: true, MaxBatch: 64, Policy: o.Policy}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	rng := rand.New(rand.NewPCG(o.Seed, 11))
	model := map[string]string{}
	bucket := fmt.Sprintf("model-%d", time.Now().UnixNano())
	seq := 0
	// appendEvents appends n random events and returns the keys whose
	// state they change.
	appendEvents := func(n int) map[string]bool {
		touched := map[string]bool{}
		entries := make([]*wal.Entry, n)
		for i := range entries {
			name := event.ObjectCreatedPut
			switch rng.IntN(10) {
			case 0, 1, 2:
				name = event.ObjectRemovedDelete
			case 3:
				name = event.ObjectAccessedGet // no effect on the state
			}
			r := Record(bucket, fmt.Sprintf("k%02d.jpg", rng.IntN(o.Keys)), name, seq)
			seq++
			switch name.Op() {
			case event.OpPut:
				model[r.Key()] = r.ResponseElements["x-amz-request-id"]
				touched[r.Key()] = true
			case event.OpDelete:
				delete(model, r.Key())
				touched[r.Key()] = true
			}
			entries[i] = Entry(r, id)
		}
		if _, err := l.Append(context.Background(), entries...); err != nil {
			t.Fatal(err)
		}
		return touched
	}
	drained := func() {
		t.Helper()
		deadline := time.Now().Add(h.timeout())
		for eng.Stats()[0].Pending > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("backlog not drained: %+v", eng.Stats()[0])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// waitModel waits until the state equals the model.
	waitModel := func() {
		t.Helper()
		drained()
		deadline := time.Now().Add(h.timeout())
		for {
			got := map[string]string{}
			for k, v := range h.State(t) {
				var m struct{ Records []event.Record }
				if err := json.Unmarshal(v, &m); err != nil || len(m.Records) != 1 {
					t.Fatalf("state of %s is not {\"Records\":[record]}: %.100s", k, v)
				}
				got[k] = m.Records[0].ResponseElements["x-amz-request-id"]
			}
			if fmt.Sprint(got) == fmt.Sprint(model) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("state differs from the model (%d keys, model %d):\n got %v\nwant %v", len(got), len(model), got, model)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopped := false
	defer func() {
		if stopped {
			h.Start(t)
		}
	}()
	outages := 0
	// outage appends n events while the server is down and checks they
	// cost at most one write per distinct key once it is back.
	outage := func(n int, pause time.Duration) {
		t.Helper()
		drained()
		h.Stop(t)
		stopped = true
		before := tg.items.Load()
		touched := appendEvents(n)
		time.Sleep(pause)
		h.Start(t)
		stopped = false
		waitModel()
		outages++
		if w := tg.items.Load() - before; w > int64(len(touched)) {
			t.Errorf("outage %d: %d writes for %d events over %d keys, want at most %d (distinct keys)", outages, w, n, len(touched), len(touched))
		}
	}
	for round := 0; round < o.Rounds; round++ {
		if round%3 == 1 {
			// A clean outage: every event of it lands in one coalescing
			// window, written once per distinct key after the restart.
			outage(50+rng.IntN(200), time.Duration(50+rng.IntN(300))*time.Millisecond)
			continue
		}
		// Events in small appends, the server going away and back at
		// random points.
		for chunk := 0; chunk < 5; chunk++ {
			appendEvents(1 + rng.IntN(40))
			if rng.IntN(6) == 0 {
				if stopped {
					h.Start(t)
				} else {
					h.Stop(t)
				}
				stopped = !stopped
			}
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
		if stopped {
			h.Start(t)
			stopped = false
		}
	}
	waitModel()
	// A long outage: one large backlog over the same few keys.
	outage(o.Backlog, 300*time.Millisecond)
	t.Logf("%d events, %d outages, %d writes", seq, outages, tg.items.Load())
}
