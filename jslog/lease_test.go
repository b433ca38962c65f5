package jslog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
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

func streamMsgs(t testing.TB, c *natscluster.Cluster, stream string) uint64 {
	t.Helper()
	nc, err := nats.Connect(c.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	info := jsCall(t, "stream "+stream+"'s info", func(ctx context.Context) (*jetstream.StreamInfo, error) {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		return s.Info(ctx)
	})
	return info.State.Msgs
}

// TestLanes splits a target's records over four lanes by key: every
// record is in exactly one lane, all of one key's in the same, in order;
// the stream is reclaimed only once every lane has passed a message.
func TestLanes(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	l := open(t, c, jslog.Config{Stream: "LANES"})
	const target, lanes = "arn:minio:sqs::lanes:webhook", 4
	from := make([]uint64, lanes)
	for i := range lanes {
		from[i] = l.Register(jslog.LaneID(target, i, lanes))
	}
	var want []string
	for i := 0; i < 100; i++ {
		var es []*wal.Entry
		for j := 0; j < 20; j++ {
			e := logtest.Entry(i*20+j, target)
			e.Key = fmt.Sprintf("bucket/k%d", rand.IntN(50))
			e.Data = []byte(fmt.Sprintf(`{"n":%d}`, i*20+j))
			es = append(es, e)
			want = append(want, string(e.Data))
		}
		if _, err := l.Append(context.Background(), es...); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int{}
	keyLane := map[string]int{}
	nexts := make([]uint64, lanes)
	for i := range lanes {
		rs, next := logtest.ReadAll(t, l, from[i], jslog.LaneID(target, i, lanes))
		nexts[i] = next
		var last uint64
		for _, r := range rs {
			if r.Seq <= last {
				t.Fatalf("lane %d: sequence %d after %d", i, r.Seq, last)
			}
			last = r.Seq
			if jslog.LaneOf(r.Key, lanes) != i {
				t.Fatalf("lane %d got key %s of lane %d", i, r.Key, jslog.LaneOf(r.Key, lanes))
			}
			if l0, ok := keyLane[r.Key]; ok && l0 != i {
				t.Fatalf("key %s in lanes %d and %d", r.Key, l0, i)
			}
			keyLane[r.Key] = i
			got[string(r.Data)]++
		}
		t.Logf("lane %d: %d records", i, len(rs))
	}
	for _, d := range want {
		if got[d] != 1 {
			t.Fatalf("record %s read %d times over the lanes, want 1", d, got[d])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("lanes hold %d records, want %d", len(got), len(want))
	}
	// Three lanes pass everything: nothing is reclaimed.
	for i := 0; i < lanes-1; i++ {
		if err := l.Advance(jslog.LaneID(target, i, lanes), nexts[i]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := streamMsgs(t, c, "LANES"); n != 100 {
		t.Fatalf("stream holds %d messages while one lane has delivered nothing, want 100", n)
	}
	if n := l.Events(); n != 2000 {
		t.Fatalf("Events() = %d before reclamation, want 2000", n)
	}
	if err := l.Advance(jslog.LaneID(target, lanes-1, lanes), nexts[lanes-1]); err != nil {
		t.Fatal(err)
	}
	// The log forgets the purged messages once the purge has answered,
	// a moment after the stream shows them gone: wait for both.
	deadline := time.Now().Add(10 * time.Second)
	for streamMsgs(t, c, "LANES") != 0 || l.Events() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not reclaimed 10 s after every lane passed it: stream holds %d messages, Events() = %d", streamMsgs(t, c, "LANES"), l.Events())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counter is a target that counts deliveries per record.
type counter struct {
	mu   sync.Mutex
	seen map[string]int
}

type counterTarget struct{ c *counter }

func (t counterTarget) Send(_ context.Context, items []delivery.Item) error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for _, it := range items {
		t.c.seen[string(it.Record)]++
	}
	return nil
}
func (counterTarget) Close() error { return nil }

// TestLeaseFailover runs two relay processes that both want the single
// lane of a target; the holder drains it. The holder crashes (connection
// dropped, nothing released): the other takes the lane once the lease
// expires and drains on from the committed cursor. Every record is
// delivered at least once; the handover time is measured.
func TestLeaseFailover(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	const target = "arn:minio:sqs::failover:webhook"
	const ttl = 2 * time.Second
	ingest := open(t, c, jslog.Config{Stream: "FAILOVER", Servers: []string{c.URL(1)}})
	ingest.Register(target)
	rec := &counter{seen: map[string]int{}}

	type proc struct {
		name  string
		l     *jslog.Log
		cur   chan time.Time // when it took the lane
		ended chan time.Time // when its drain stopped
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	start := func(name string, url string) *proc {
		p := &proc{name: name, l: open(t, c, jslog.Config{Stream: "FAILOVER", Servers: []string{url}}),
			cur: make(chan time.Time, 4), ended: make(chan time.Time, 4)}
		ls, err := p.l.Leases(ctx, jslog.LeaseConfig{Owner: name, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls.Hold(ctx, "lane/"+target, func(lctx context.Context) {
				p.cur <- time.Now()
				e := delivery.New(p.l, delivery.Options{Logger: quietLogger()})
				if err := e.Add(delivery.Spec{ID: target, Target: counterTarget{rec}}); err != nil {
					t.Error(err)
					return
				}
				_ = e.Run(lctx)
				p.ended <- time.Now()
			})
		}()
		return p
	}
	p1 := start("p1", c.URL(2))
	select {
	case <-p1.cur:
	case <-time.After(10 * time.Second):
		t.Fatal("p1 did not take the free lane within 10 s")
	}
	p2 := start("p2", c.URL(3))

	var appended []string
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			e := logtest.Entry(len(appended), target)
			if _, err := ingest.Append(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			appended = append(appended, string(e.Data))
			time.Sleep(time.Millisecond)
		}
	}
	appendN(300)
	select {
	case <-p2.cur:
		t.Fatal("p2 took the lane while p1 held it")
	default:
	}
	crashed := time.Now()
	p1.l.Crash()
	appendN(300) // ingest continues during the handover
	var took time.Time
	select {
	case took = <-p2.cur:
	case <-time.After(ttl + 10*time.Second):
		t.Fatalf("p2 did not take the lane within TTL+10 s of p1's crash")
	}
	var stopped time.Time
	select {
	case stopped = <-p1.ended:
	default:
		t.Fatal("p1's drain still running when p2 took the lane")
	}
	appendN(100)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec.mu.Lock()
		missing, dups := 0, 0
		for _, d := range appended {
			switch n := rec.seen[d]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
		}
		rec.mu.Unlock()
		if missing == 0 {
			t.Logf("lease TTL %v: p1 crashed, its drain stopped %v later, p2 took the lane %v after the crash; %d records delivered, %d duplicates",
				ttl, stopped.Sub(crashed).Round(time.Millisecond), took.Sub(crashed).Round(time.Millisecond), len(appended), dups)
			if took.Sub(crashed) > ttl+5*time.Second {
				t.Fatalf("handover took %v, want under TTL + 5 s", took.Sub(crashed))
			}
			if stopped.After(took) {
				t.Fatalf("p1 drained until %v, after p2 took the lane at %v", stopped, took)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records never delivered", missing, len(appended))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpread has processes join and one crash while they spread six lanes:
// the lanes end evenly shared, a crashed process's lanes are taken over,
// and no lane ever runs in two processes at once.
func TestSpread(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	const ttl = 2 * time.Second
	names := []string{"a#0/6", "a#1/6", "a#2/6", "a#3/6", "a#4/6", "a#5/6"}
	var mu sync.Mutex
	active := map[string]string{} // lane → process running it
	overlap := ""
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	logs := map[string]*jslog.Log{}
	start := func(name string, node int) {
		l := open(t, c, jslog.Config{Stream: "SPREAD", Servers: []string{c.URL(node)}})
		logs[name] = l
		ls, err := l.Leases(ctx, jslog.LeaseConfig{Owner: name, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls.Spread(ctx, names, func(lctx context.Context, lane string) {
				mu.Lock()
				if o, ok := active[lane]; ok && overlap == "" {
					overlap = fmt.Sprintf("%s took lane %s while %s ran it", name, lane, o)
				}
				active[lane] = name
				mu.Unlock()
				<-lctx.Done()
				mu.Lock()
				if active[lane] == name {
					delete(active, lane)
				}
				mu.Unlock()
			})
		}()
	}
	shares := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for _, p := range active {
			out[p]++
		}
		return out
	}
	waitShares := func(what string, want map[string]int) time.Duration {
		t.Helper()
		begin := time.Now()
		deadline := begin.Add(20 * time.Second)
		for {
			got := shares()
			ok := len(got) == len(want)
			for p, n := range want {
				ok = ok && got[p] == n
			}
			if ok {
				return time.Since(begin)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: lanes per process %v after 20 s, want %v", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start("p1", 1)
	waitShares("one process", map[string]int{"p1": 6})
	start("p2", 2)
	d2 := waitShares("two processes", map[string]int{"p1": 3, "p2": 3})
	start("p3", 3)
	d3 := waitShares("three processes", map[string]int{"p1": 2, "p2": 2, "p3": 2})
	crashed := time.Now()
	logs["p3"].Crash()
	// p3's fns end when it cannot renew its leases (its lanes leave the
	// table then); its member entry and leases expire after the TTL.
	waitShares("after p3 crashed", map[string]int{"p1": 3, "p2": 3})
	t.Logf("lease TTL %v: rebalanced to 3+3 in %v after a join, 2+2+2 in %v; p3's lanes taken over %v after its crash",
		ttl, d2.Round(time.Millisecond), d3.Round(time.Millisecond), time.Since(crashed).Round(time.Millisecond))
	mu.Lock()
	defer mu.Unlock()
	if overlap != "" {
		t.Fatal(overlap)
	}
}
