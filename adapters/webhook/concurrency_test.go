package webhook

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/kit"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
)

// inFlight counts the requests an endpoint is answering at once, from
// inside webhookrecv's Delay hook, which it makes wait up to maxWait.
type inFlight struct {
	mu        sync.Mutex
	rng       *rand.Rand
	cur, most int
}

func (f *inFlight) delay(maxWait time.Duration) func() time.Duration {
	return func() time.Duration {
		f.mu.Lock()
		f.cur++
		f.most = max(f.most, f.cur)
		d := time.Duration(f.rng.Int63n(int64(maxWait)))
		f.mu.Unlock()
		time.Sleep(d)
		f.mu.Lock()
		f.cur--
		f.mu.Unlock()
		return 0
	}
}

// TestDefaultConcurrencyOrderPerKey: a webhook with its kind's defaults
// (one batch in flight, DefaultConcurrency POSTs of it at once), against
// an endpoint that answers after random delays and refuses one request in
// eight with 503, delivers every event exactly once (a send reports each
// event it delivered, so only failed and unsent ones are sent again; the
// engine resends nothing with one batch in flight), each object's events
// in log order, with POSTs side by side.
func TestDefaultConcurrencyOrderPerKey(t *testing.T) {
	const n, keys = 2000, 61
	rcv := webhookrecv.New(t, "")
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(11))
	fl := &inFlight{rng: rand.New(rand.NewSource(12))}
	rcv.Delay = fl.delay(1500 * time.Microsecond)
	rcv.Unavailable = func([]byte) bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Intn(8) == 0
	}
	rcv.OnBody = func([]byte) {} // keep no bodies: Accepted has what the test needs
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Timeout: "5s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := deliverKeyed(t, rcv, delivery.Spec{Target: tg, MaxBatch: Kind.MaxBatch, Policy: delivery.Policy{InFlight: Kind.InFlight}}, n, keys)
	st := e.Stats()[0]
	dups := 0
	for _, c := range rcv.Accepted() {
		dups += c - 1
	}
	if uint64(dups) > st.Resent {
		t.Errorf("got %d duplicate deliveries, want at most the %d events the engine counted as resent", dups, st.Resent)
	}
	if st.Quarantined != 0 {
		t.Errorf("quarantined %d, want 0", st.Quarantined)
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.most < 2 {
		t.Errorf("at most %d POSTs at once, want them side by side", fl.most)
	}
}

// TestSendStopsAtRetryableFailure: when one POST of a concurrent send
// fails with a retryable error, every event before it in log order is
// still posted, no later event of its object is posted, and every event
// reported unsent comes after it, so the engine's retry (the failed and
// unsent events, in order) keeps each object's order and the real cause
// is the first failure it sees.
func TestSendStopsAtRetryableFailure(t *testing.T) {
	const n, keys, bad = 40, 8, 21
	rcv := webhookrecv.New(t, "")
	fl := &inFlight{rng: rand.New(rand.NewSource(3))}
	rcv.Delay = fl.delay(2 * time.Millisecond)
	badKey := fmt.Sprintf("k%d", bad%keys)
	items := make([]delivery.Item, n)
	for i := range items {
		items[i] = targettest.Item("b", fmt.Sprintf("k%d", i%keys), event.ObjectCreatedPut, i)
	}
	badBody := string(items[bad].Message())
	rcv.Unavailable = func(body []byte) bool { return string(body) == badBody }
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Timeout: "5s", Concurrency: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	err = tg.Send(context.Background(), items)
	var be *delivery.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a *delivery.BatchError", err)
	}
	failed := map[int]error{}
	for _, f := range be.Failed {
		failed[f.Index] = f.Err
	}
	if e := failed[bad]; e == nil || errors.Is(e, delivery.ErrEarlierFailed) {
		t.Fatalf("item %d: got %v, want its 503", bad, e)
	}
	if be.Failed[0].Index != bad {
		t.Errorf("first failed item: got %d, want %d (unsent items only after the failure)", be.Failed[0].Index, bad)
	}
	got := map[string]bool{}
	for _, body := range rcv.Bodies() {
		got[string(body)] = true
	}
	for i := range items {
		received := got[string(items[i].Message())]
		e, isFailed := failed[i]
		switch {
		case i < bad && (isFailed || !received):
			t.Errorf("item %d (before the failure): failed %v, received %v; want delivered", i, e, received)
		case i > bad && items[i].Key == badKey && (!isFailed || received):
			t.Errorf("item %d (same object, after the failure): failed %v, received %v; want unsent", i, e, received)
		case isFailed && i != bad && (!errors.Is(e, delivery.ErrEarlierFailed) || received):
			t.Errorf("item %d: failed with %v, received %v; want unsent", i, e, received)
		case !isFailed && !received:
			t.Errorf("item %d: reported delivered, never received", i)
		}
	}
}

// TestConcurrencyOne: with concurrency 1 the endpoint gets every event in
// log order, one at a time, across objects too.
func TestConcurrencyOne(t *testing.T) {
	rcv := webhookrecv.New(t, "")
	fl := &inFlight{rng: rand.New(rand.NewSource(5))}
	rcv.Delay = fl.delay(500 * time.Microsecond)
	tg, err := New(Config{Enable: true, Endpoint: rcv.URL(), Concurrency: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	items := make([]delivery.Item, 50)
	for i := range items {
		items[i] = targettest.Item("b", fmt.Sprintf("k%d", i), event.ObjectCreatedPut, i)
	}
	if err := tg.Send(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	bodies := rcv.Bodies()
	if len(bodies) != len(items) {
		t.Fatalf("got %d bodies, want %d", len(bodies), len(items))
	}
	for i, b := range bodies {
		if want := string(items[i].Message()); string(b) != want {
			t.Fatalf("body %d: got %s, want %s", i, b, want)
		}
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.most != 1 {
		t.Errorf("got %d POSTs at once, want 1", fl.most)
	}
}

// TestConcurrencyValidate: concurrency is 0 (the default) to
// MaxConcurrency.
func TestConcurrencyValidate(t *testing.T) {
	for _, c := range []struct {
		n  int
		ok bool
	}{{0, true}, {1, true}, {MaxConcurrency, true}, {-1, false}, {MaxConcurrency + 1, false}} {
		cfg := Config{Enable: true, Endpoint: "http://127.0.0.1:1/", Concurrency: c.n}
		err := cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("concurrency %d: got %v, want ok %v", c.n, err, c.ok)
		}
		var fe *kit.FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "concurrency") {
			t.Errorf("concurrency %d: got %v, want a *kit.FieldError naming concurrency", c.n, err)
		}
	}
}
