package jslog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
	"github.com/bucketrelay/bucketrelay/wal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// recorder is a target that keeps what it was sent.
type recorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *recorder) Send(_ context.Context, items []delivery.Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range items {
		r.keys = append(r.keys, it.Key)
	}
	return nil
}
func (r *recorder) Close() error { return nil }
func (r *recorder) n() int       { r.mu.Lock(); defer r.mu.Unlock(); return len(r.keys) }

// TestEngineDrains runs the delivery engine on a JetStream log: two
// targets receive their records in order, their cursors are committed,
// and the delivered messages are reclaimed from the stream.
func TestEngineDrains(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	l := open(t, c, jslog.Config{Stream: "ENGINE"})
	a, b := &recorder{}, &recorder{}
	e := delivery.New(l, delivery.Options{Logger: quietLogger()})
	if err := e.Add(delivery.Spec{ID: "arn:minio:sqs::a:webhook", Target: a}); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(delivery.Spec{ID: "arn:minio:sqs::b:webhook", Target: b}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	const appends, per = 200, 25
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < appends; i += 4 {
				es := make([]*wal.Entry, per)
				for j := range es {
					k := i*per + j
					if k%2 == 0 {
						es[j] = logtest.Entry(k, "arn:minio:sqs::a:webhook", "arn:minio:sqs::b:webhook")
					} else {
						es[j] = logtest.Entry(k, "arn:minio:sqs::a:webhook")
					}
				}
				if _, err := l.Append(context.Background(), es...); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ingest := time.Since(start)
	total := appends * per
	deadline := time.Now().Add(60 * time.Second)
	for a.n() < total || b.n() < total/2 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered a %d of %d, b %d of %d after 60 s", a.n(), total, b.n(), total/2)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d records appended in %v (%.0f/s, 4 appenders of %d), delivered to both targets %v after the first append",
		total, ingest.Round(time.Millisecond), float64(total)/ingest.Seconds(), per, time.Since(start).Round(time.Millisecond))
	seen := map[string]bool{}
	for _, k := range a.keys {
		if seen[k] {
			t.Fatalf("a got %s twice", k)
		}
		seen[k] = true
	}
	if len(seen) != total {
		t.Fatalf("a got %d distinct records, want %d", len(seen), total)
	}
	// Every target's records come in append order: within an appender the
	// keys grow.
	last := map[int]int{}
	for _, k := range b.keys {
		var n int
		fmt.Sscanf(k, "photos/%d.jpg", &n)
		w := (n / per) % 4
		if n <= last[w] && last[w] != 0 {
			t.Fatalf("b got %s after photos/%d.jpg from the same appender", k, last[w])
		}
		last[w] = n
	}

	// Cursors are committed and the stream is reclaimed.
	nc, err := nats.Connect(c.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	deadline = time.Now().Add(30 * time.Second)
	for {
		info := jsCall(t, "stream ENGINE's info", func(ctx context.Context) (*jetstream.StreamInfo, error) {
			s, err := js.Stream(ctx, "ENGINE")
			if err != nil {
				return nil, err
			}
			return s.Info(ctx)
		})
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream still holds %d messages 30 s after every record was delivered", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{"arn:minio:sqs::a:webhook", "arn:minio:sqs::b:webhook"} {
		cur, _ := l.Cursor(id)
		if _, last := l.Routed(id); cur <= last {
			t.Fatalf("cursor of %s is %d, want past the last record %d", id, cur, last)
		}
	}
}

// TestBacklogOtherProcess appends a backlog through one log (one relay
// process) and drains it through another opened afterwards, as a relay
// taking over a target does: it starts from the committed cursor and
// reads messages it never saw appended.
func TestBacklogOtherProcess(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	const id = "arn:minio:sqs::backlog:webhook"
	p1 := open(t, c, jslog.Config{Stream: "BACKLOG", Servers: []string{c.URL(1)}})
	p1.Register(id)
	const appends, per = 400, 50
	for i := 0; i < appends; i++ {
		es := make([]*wal.Entry, per)
		for j := range es {
			es[j] = logtest.Entry(i*per+j, id)
		}
		if _, err := p1.Append(context.Background(), es...); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	p2 := open(t, c, jslog.Config{Stream: "BACKLOG", Servers: []string{c.URL(3)}})
	opened := time.Since(start)
	r := &recorder{}
	e := delivery.New(p2, delivery.Options{Logger: quietLogger()})
	if err := e.Add(delivery.Spec{ID: id, Target: r, MaxBatch: 500}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	total := appends * per
	deadline := time.Now().Add(60 * time.Second)
	for r.n() < total {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of %d after 60 s", r.n(), total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	t.Logf("second process opened in %v, drained a backlog of %d records (%d messages) in %v: %.0f records/s",
		opened.Round(time.Millisecond), total, appends, d.Round(time.Millisecond), float64(total)/d.Seconds())
	for i, k := range r.keys {
		if want := fmt.Sprintf("photos/%d.jpg", i); k != want {
			t.Fatalf("record %d is %s, want %s", i, k, want)
		}
	}
	// p1 sees p2's cursor.
	deadline = time.Now().Add(10 * time.Second)
	for {
		c1, _ := p1.Cursor(id)
		c2, _ := p2.Cursor(id)
		if c1 == c2 && c1 > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first process sees cursor %d, the second moved it to %d", c1, c2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
