package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
)

var clusterBacklog = flag.Int("cluster-backlog", 0, "events pending at the large failover of TestClusterFailoverBacklog; 0 means 20,000 (600,000 with -cluster-long)")

// TestClusterFailoverBacklog kills, with SIGKILL, the relay draining lanes
// with a backlog (the receiver was down while events were taken), first a
// small one, then one 10 times larger, and measures how long after the
// kill each of its lanes delivers again on the other relay. A lane taken
// over starts delivering without first reading its whole backlog (it used
// to count it under the delivery engine's lock: 8 to 16 s after 600k
// events), so the two times differ by little more than noise: the larger
// must stay under 3 times the smaller (or the lease TTL). With 600,000
// events (-cluster-long): 17.6 s before the fix, 1.9 s after. Nothing
// acknowledged is lost.
func TestClusterFailoverBacklog(t *testing.T) {
	large := *clusterBacklog
	if large <= 0 {
		// The short run (CI) checks the mechanism end to end; only the
		// long one's backlog is large enough to tell the old code apart.
		large = 20_000
		if *clusterLong {
			large = 600_000
		}
	}
	small := large / 10
	g := newClusterRig(t, natscluster.Options{}, 2, nil)
	var times []string
	var resumed []time.Duration
	var keys []string // fill's producers' keys
	for i := range 4 {
		for k := range 8 {
			keys = append(keys, fmt.Sprintf("%s/f%d-%d.jpg", clusterrun.Bucket, i, k))
		}
	}
	for round, n := range []int{small, large} {
		g.rcv.SetDown(true)
		start := len(g.acked.IDs())
		t0 := time.Now()
		g.fill(n)
		took := time.Since(t0)
		// Once both relays drain lanes, kill the one holding the most.
		victim, survivor := g.procs[0], g.procs[1]
		var owned []string
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			lanes, err := clusterrun.Lanes(ctx, g.procs[1].Addr)
			cancel()
			if err != nil {
				t.Fatalf("lanes: %v", err)
			}
			if len(clusterrun.OwnedBy(lanes, g.procs[1].Owner)) > len(clusterrun.OwnedBy(lanes, g.procs[0].Owner)) {
				victim, survivor = g.procs[1], g.procs[0]
			}
			owned = clusterrun.OwnedBy(lanes, victim.Owner)
			if len(clusterrun.OwnedBy(lanes, survivor.Owner)) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the lanes are not shared after 30 s: %+v", round+1, lanes)
			}
		}
		victim.Kill()
		killed := time.Now()
		g.rcv.SetDown(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		d, err := clusterrun.WaitDelivering(ctx, g.rcv, owned, keys, killed)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		pending := len(g.acked.IDs()) - start
		t.Logf("backlog %d events (taken in %.1fs): %s held %v; its lanes deliver again %.2fs after kill -9 (lease TTL 2s)", pending, took.Seconds(), victim.Owner, owned, d.Seconds())
		times = append(times, fmt.Sprintf("%d pending: %.2fs", pending, d.Seconds()))
		resumed = append(resumed, d)
		if err := victim.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		// Let the backlog drain before the next round.
		deadline := time.Now().Add(5 * time.Minute)
		for ids := g.acked.IDs(); !g.rcv.Has(ids); {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the backlog did not drain in 5 minutes (%d of %d delivered)", round+1, g.rcv.Delivered(), len(ids))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// Ratios, not absolute times: the lease (2 s) sets the floor of both.
	if floor := max(resumed[0], 2*time.Second); resumed[1] > 3*floor {
		t.Errorf("lanes delivered again %v after kill -9 with %d pending, %v with a tenth of it: want under 3 times that (or the lease TTL)", resumed[1], large, resumed[0])
	}
	s := g.verify(nil)
	fmt.Fprintf(os.Stderr, "cluster failover with a backlog (kill -9 to delivering again): %v; %s\n", times, s)
}

// fill posts n events (batches of 100 from 4 producers over every relay)
// and waits until they are acknowledged.
func (g *clusterRig) fill(n int) {
	g.t.Helper()
	const producers, batch = 4, 100 // keys: see TestClusterFailoverBacklog
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range producers {
		p := &clusterrun.Producer{Name: fmt.Sprintf("f%d", i), Addrs: g.addrs(), Keys: 8, Batch: batch, Limit: (n + producers*batch - 1) / (producers * batch), IDs: &g.ids, Acked: &g.acked}
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx) }()
	}
	wg.Wait()
	if ctx.Err() != nil {
		g.t.Fatalf("posting %d events took over 10 minutes (answers %v)", n, g.acked.Status())
	}
}
