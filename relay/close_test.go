package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/testkit/webhookrecv"
	"github.com/bucketrelay/bucketrelay/wal"
)

// TestCloseDeadlineHangingEndpoint: the webhook endpoint takes the request
// and never answers (the webhook timeout is 30 s). Close with a 500 ms
// deadline returns by about the deadline, and after reopening on a working
// endpoint every event published before Close arrives.
func TestCloseDeadlineHangingEndpoint(t *testing.T) {
	hung := make(chan struct{}, 16)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		hung <- struct{}{}
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)

	dir := t.TempDir()
	cfg := testConfigTimeout(t, dir, hang.URL, "30s")
	r, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), records("images", 0, 5)...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the endpoint never got a request")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = r.Close(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if took > 900*time.Millisecond {
		t.Fatalf("Close took %v, want about 500ms", took)
	}
	if err := r.Publish(context.Background(), records("images", 5, 1)...); !errors.Is(err, ErrClosed) || !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Publish after Close: got %v, want ErrClosed (== wal.ErrClosed)", err)
	}

	rcv := webhookrecv.New(t, "")
	r2 := openRelay(t, testConfig(t, dir, rcv.URL(), ""))
	got := waitBodies(t, rcv, 5, 10*time.Second)
	for i, b := range got[:5] {
		if s := seqOf(t, b); s != i {
			t.Fatalf("after reopening, event %d arrived at position %d, want every event in order", s, i)
		}
	}
	if q := r2.Stats()[0].Quarantined; q != 0 {
		t.Fatalf("quarantined %d events, want 0: an abandoned send is not a failure of the event", q)
	}
}

func testConfigTimeout(t testing.TB, dir, endpoint, timeout string) *Config {
	t.Helper()
	return parseConfig(t, `{"relay":{"dataDir":"`+dir+`","minBackoff":"10ms","maxBackoff":"200ms"},
"notify":{"webhook":{"1":{"enable":true,"endpoint":"`+endpoint+`","timeout":"`+timeout+`","concurrency":1}}},
"buckets":{"images":[{"arn":"`+webhookARN+`","events":["put","delete"]}]}}`)
}

// funcTarget is a delivery.Target built from a function.
type funcTarget struct {
	send func(ctx context.Context, items []delivery.Item) error
}

func (f *funcTarget) Send(ctx context.Context, items []delivery.Item) error {
	return f.send(ctx, items)
}
func (f *funcTarget) Close() error { return nil }

// TestCloseDeadlineTargetIgnoresContext: a target whose Send blocks and
// ignores its context. Close still returns by about the deadline; the
// events are delivered after reopening with a working target.
func TestCloseDeadlineTargetIgnoresContext(t *testing.T) {
	const arn = "arn:minio:sqs::embed:sink"
	dir := t.TempDir()
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+dir+`","minBackoff":"10ms"}}`)
	entered := make(chan struct{}, 1)
	stuck := make(chan struct{})
	defer close(stuck)
	hanging := &funcTarget{send: func(context.Context, []delivery.Item) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-stuck
		return nil
	}}
	r, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: hanging}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: arn}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), records("images", 0, 10)...); err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Fatalf("Close took %v, want about 500ms", took)
	}

	var mu sync.Mutex
	var keys []string
	var n atomic.Int64
	working := &funcTarget{send: func(_ context.Context, items []delivery.Item) error {
		mu.Lock()
		for _, it := range items {
			keys = append(keys, it.Key)
		}
		mu.Unlock()
		n.Add(int64(len(items)))
		return nil
	}}
	r2, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: working}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(context.Background())
	waitFor(t, func() bool { return n.Load() >= 10 })
	mu.Lock()
	defer mu.Unlock()
	for i, want := range records("images", 0, 10) {
		if keys[i] != want.Key() {
			t.Fatalf("after reopening, delivery %d is %s, want %s", i, keys[i], want.Key())
		}
	}
}

// TestCloseWaitsForSendsInFlight: without a deadline, Close lets a slow
// send finish and commits the cursor, so nothing is delivered twice.
func TestCloseWaitsForSendsInFlight(t *testing.T) {
	const arn = "arn:minio:sqs::embed:sink"
	dir := t.TempDir()
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+dir+`"}}`)
	var n atomic.Int64
	entered := make(chan struct{}, 1)
	slow := &funcTarget{send: func(_ context.Context, items []delivery.Item) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		time.Sleep(300 * time.Millisecond)
		n.Add(int64(len(items)))
		return nil
	}}
	r, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: slow}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: arn, Events: []event.Name{event.ObjectCreatedAll}}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish(context.Background(), records("images", 0, 3)...); err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	delivered := n.Load()
	var again atomic.Int64
	r2, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: &funcTarget{send: func(_ context.Context, items []delivery.Item) error {
		again.Add(int64(len(items)))
		return nil
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	r2.Close(context.Background())
	if delivered+again.Load() != 3 || again.Load() != 3-delivered {
		t.Fatalf("delivered %d before Close and %d after reopening, want 3 in all, none twice", delivered, again.Load())
	}
}

// TestCloseDuringPublish: publishers keep publishing while Close runs
// with a short deadline. Every Publish that returned nil has its event
// delivered after reopening; every other one failed with ErrClosed.
func TestCloseDuringPublish(t *testing.T) {
	const arn = "arn:minio:sqs::embed:sink"
	dir := t.TempDir()
	cfg := parseConfig(t, `{"relay":{"dataDir":"`+dir+`","minBackoff":"10ms"}}`)
	slow := &funcTarget{send: func(ctx context.Context, _ []delivery.Item) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
			return errors.New("sink: unavailable")
		}
	}}
	r, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: slow}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetBucketRules("images", []rules.Rule{{ARN: arn}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				rec := records("images", g*100000+i, 1)
				err := r.Publish(context.Background(), rec...)
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Publish during Close: got %v, want ErrClosed", err)
					}
					return
				}
				mu.Lock()
				acked[rec[0].Key()] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.Close(ctx)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no Publish succeeded before Close")
	}

	var dmu sync.Mutex
	got := map[string]bool{}
	sink := &funcTarget{send: func(_ context.Context, items []delivery.Item) error {
		dmu.Lock()
		defer dmu.Unlock()
		for _, it := range items {
			got[it.Key] = true
		}
		return nil
	}}
	r2, err := Open(cfg, Options{Targets: map[string]delivery.Target{arn: sink}})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close(context.Background())
	waitFor(t, func() bool {
		dmu.Lock()
		defer dmu.Unlock()
		for k := range acked {
			if !got[k] {
				return false
			}
		}
		return true
	})
}
