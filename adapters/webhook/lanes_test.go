package webhook

import (
	"context"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// TestLanesOrderPerKey: a webhook with 8 lanes, against an endpoint that
// answers after random delays (so out of order across lanes) and fails one
// request in eight at random, delivers every event, each object's events in
// log order, and the lanes do run side by side.
func TestLanesOrderPerKey(t *testing.T) {
	const n, keys = 2000, 61 // prime: no lane split by sequence keeps a key in one lane by chance
	rcv := webhookrecv.New(t, "")
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(7))
	rcv.Delay = func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.Intn(1500)) * time.Microsecond
	}
	rcv.Unavailable = func([]byte) bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Intn(8) == 0
	}
	var conc, most int
	rcv.OnBody = func([]byte) {} // keep no bodies: Accepted has what the test needs
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Timeout: "5s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	counting := &concurrency{Target: tg, conc: &conc, most: &most}

	e := deliverKeyed(t, rcv, delivery.Spec{Target: counting, MaxBatch: 25, Policy: delivery.Policy{Lanes: 8}}, n, keys)
	counting.mu.Lock()
	defer counting.mu.Unlock()
	if most < 2 {
		t.Errorf("at most %d sends at once, want the lanes side by side", most)
	}
	if st := e.Stats()[0]; st.Quarantined != 0 {
		t.Errorf("quarantined %d, want 0", st.Quarantined)
	}
}

// concurrency counts the sends in flight on a target.
type concurrency struct {
	delivery.Target
	mu         sync.Mutex
	conc, most *int
}

func (c *concurrency) Send(ctx context.Context, items []delivery.Item) error {
	c.mu.Lock()
	*c.conc++
	*c.most = max(*c.most, *c.conc)
	c.mu.Unlock()
	defer func() { c.mu.Lock(); *c.conc--; c.mu.Unlock() }()
	return c.Target.Send(ctx, items)
}

// TestConcurrentSends: the webhook's Send is safe for concurrent use
// (kit.Kind.InFlight), checked through pipelined lanes.
func TestConcurrentSends(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	targettest.RunConcurrent(t, targettest.Harness{
		Features: targettest.Features{Message: true},
		New: func(t testing.TB) delivery.Target {
			tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Timeout: "5s"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return tg
		},
		Received: func(testing.TB) [][]byte { return rcv.Bodies() },
	})
}
