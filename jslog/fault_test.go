package jslog_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery/logtest"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
	"github.com/bucketrelay/bucketrelay/wal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamLeader returns the node number (1..3) leading stream, asking
// node via.
func streamLeader(t testing.TB, c *natscluster.Cluster, via int, stream string) int {
	t.Helper()
	nc, err := nats.Connect(c.URL(via))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// A minute, each request 5 s: right after a cluster starts, on a
	// loaded machine, the stream can take longer than 10 s to elect its
	// leader, and a request sent meanwhile may go unanswered.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var info *jetstream.StreamInfo
		s, err := js.Stream(ctx, stream)
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			if n, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "n")); err == nil {
				return n
			}
		}
	}
	t.Fatalf("stream %s has no leader", stream)
	return 0
}

// appender appends one record at a time from several goroutines and
// remembers every one that was acknowledged.
type appender struct {
	l        *jslog.Log
	target   string
	timeout  time.Duration
	mu       sync.Mutex
	acked    map[string]bool
	seqs     map[string]uint64
	next     atomic.Int64
	failures atomic.Int64
	maxWait  atomic.Int64 // ns, longest successful Append
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startAppender(l *jslog.Log, target string, workers int, timeout time.Duration) *appender {
	a := &appender{l: l, target: target, timeout: timeout, acked: map[string]bool{}, seqs: map[string]uint64{}, stop: make(chan struct{})}
	for range workers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for {
				select {
				case <-a.stop:
					return
				default:
				}
				i := int(a.next.Add(1))
				e := logtest.Entry(i, target)
				ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
				start := time.Now()
				seq, err := l.Append(ctx, e)
				cancel()
				if err != nil {
					a.failures.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if d := int64(time.Since(start)); d > a.maxWait.Load() {
					a.maxWait.Store(d)
				}
				a.mu.Lock()
				a.acked[e.Key] = true
				a.seqs[e.Key] = seq
				a.mu.Unlock()
			}
		}()
	}
	return a
}

func (a *appender) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.acked)
}

func (a *appender) halt() { close(a.stop); a.wg.Wait() }

// checkNoneLost opens a fresh log on stream and checks every record a
// acknowledged is there. It first waits until the fresh log has seen the
// highest acknowledged sequence: a server that was just cut off or
// restarted can answer for a while with the stream as it was (a stale
// view, never a loss), and the check is about loss.
func checkNoneLost(t *testing.T, c *natscluster.Cluster, stream string, from uint64, target string, a *appender) {
	t.Helper()
	var maxSeq uint64
	for _, s := range a.seqs {
		maxSeq = max(maxSeq, s)
	}
	l := open(t, c, jslog.Config{Stream: stream})
	deadline := time.Now().Add(60 * time.Second)
	for l.LastSeq() < maxSeq {
		if time.Now().After(deadline) {
			t.Fatalf("a fresh log sees the stream up to %d 60 s after opening, records were acknowledged up to %d", l.LastSeq(), maxSeq)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs, _ := logtest.ReadAll(t, l, from, target)
	got := map[string]bool{}
	for _, r := range rs {
		got[r.Key] = true
	}
	lost := 0
	for k := range a.acked {
		if !got[k] {
			lost++
		}
	}
	t.Logf("acknowledged %d, stored %d (unacknowledged but stored: %d), lost %d", len(a.acked), len(got), len(got)-len(a.acked)+lost, lost)
	if lost != 0 {
		t.Fatalf("%d of %d acknowledged records lost", lost, len(a.acked))
	}
}

// TestKillServerMidStream kills -9 the stream leader while eight
// appenders run, restarts it, and checks that appends continued and no
// acknowledged record was lost.
func TestKillServerMidStream(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	l := open(t, c, jslog.Config{Stream: "KILL1"})
	from := l.Register("t")
	a := startAppender(l, "t", 8, 20*time.Second)
	time.Sleep(time.Second)
	before := a.count()
	leader := streamLeader(t, c, 1, "KILL1")
	killed := time.Now()
	c.Kill(t, leader)
	t.Logf("killed node %d (stream leader) after %d acknowledged records", leader, before)
	// Appends continue on the other two: wait for 200 more (a new leader
	// is elected first), then a little longer with the node down.
	deadline := killed.Add(30 * time.Second)
	for a.count() < before+200 {
		if time.Now().After(deadline) {
			t.Fatalf("appends did not continue within 30 s of the kill (%d since)", a.count()-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	failover := time.Since(killed)
	time.Sleep(time.Second)
	during := a.count()
	c.Restart(t, leader)
	t.Logf("200 appends acknowledged %.1fs after the kill; restarted node %d %.1fs after it, %d acknowledged meanwhile",
		failover.Seconds(), leader, time.Since(killed).Seconds(), during-before)
	time.Sleep(time.Second)
	a.halt()
	after := a.count()
	t.Logf("acknowledged %d in all, %d failed appends, longest acknowledged append %v", after, a.failures.Load(), time.Duration(a.maxWait.Load()))
	if after <= during {
		t.Fatalf("no append acknowledged after the restart")
	}
	if f := a.failures.Load(); f != 0 {
		t.Fatalf("%d appends failed with a 20 s timeout while two of three servers were up", f)
	}
	checkNoneLost(t, c, "KILL1", from, "t", a)
}

// TestTwoServersDown stops two servers of three: appends fail (no quorum)
// and never report success for a record not stored; once the servers
// return, appends resume and every acknowledged record is there.
func TestTwoServersDown(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	l := open(t, c, jslog.Config{Stream: "KILL2"})
	from := l.Register("t")
	a := startAppender(l, "t", 4, 2*time.Second)
	time.Sleep(500 * time.Millisecond)
	c.Kill(t, 2)
	c.Kill(t, 3)
	downAt := a.count()
	t.Logf("killed nodes 2 and 3 after %d acknowledged records", downAt)

	// Without quorum a single append fails with ErrUnavailable.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := l.Append(ctx, logtest.Entry(-1, "t"))
	cancel()
	if !errors.Is(err, jslog.ErrUnavailable) {
		t.Fatalf("append without quorum: %v, want ErrUnavailable", err)
	}
	t.Logf("append without quorum: %v", err)
	time.Sleep(2 * time.Second)
	down := a.count() - downAt
	failsDown := a.failures.Load()
	if failsDown == 0 {
		t.Fatal("no append failed while two of three servers were down")
	}

	back := time.Now()
	c.Restart(t, 2)
	c.Restart(t, 3)
	deadline := time.Now().Add(30 * time.Second)
	resumed := a.count()
	for a.count() < resumed+50 {
		if time.Now().After(deadline) {
			t.Fatalf("appends did not resume within 30 s of the servers' return (%d since)", a.count()-resumed)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("while down: %d acknowledged (published before the kill took effect), %d failed; appends resumed %.1fs after the restart",
		down, failsDown, time.Since(back).Seconds())
	a.halt()
	// The appending process's own view recovers too: its index follows
	// the stream again once a server answers (it restarts the follower,
	// which on a loaded machine can take several seconds).
	var rs []wal.Record
	for deadline := time.Now().Add(30 * time.Second); ; {
		rs, _ = logtest.ReadAll(t, l, from, "t")
		if len(rs) >= len(a.acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the appending log reads %d records 30 s after the outage, %d were acknowledged", len(rs), len(a.acked))
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkNoneLost(t, c, "KILL2", from, "t", a)
}

// TestReadRetriesUnavailable reads messages the stream answers for with
// "JetStream system temporarily unavailable" for a while (as during an
// election or right after a partition heals): Read waits and fetches
// again instead of returning the error, which would stop a delivery loop
// for good (the engine retries only damage).
func TestReadRetriesUnavailable(t *testing.T) {
	c := natscluster.Start(t, natscluster.Options{})
	w := open(t, c, jslog.Config{Stream: "READQ"})
	from := w.Register("t")
	const n = 50
	for i := range n {
		if _, err := w.Append(context.Background(), logtest.Entry(i, "t")); err != nil {
			t.Fatal(err)
		}
	}
	r := open(t, c, jslog.Config{Stream: "READQ"}) // a second process: nothing cached
	deadline := time.Now().Add(30 * time.Second)
	for r.LastSeq() < w.LastSeq() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r.FailFetches(5)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := 0
	if _, err := r.Read(ctx, from, "t", func(wal.Record) bool { got++; return true }); err != nil || got != n {
		t.Fatalf("Read while the stream answers 503 five times: %d records, err %v; want %d, nil", got, err, n)
	}
}
