package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/testkit/natscluster"
)

// The cluster tests: real relay processes (the binary) on a real 3-node
// JetStream cluster (testkit/natscluster), killed with SIGKILL, NATS
// servers killed and partitioned, and a receiver that checks every
// acknowledged event arrives, in order per object.

var clusterLong = flag.Bool("cluster-long", false, "more relay kills and longer runs in the cluster tests")

// clusterRig is a NATS cluster, relay processes on it and a receiver.
type clusterRig struct {
	t     *testing.T
	nc    *natscluster.Cluster
	rcv   *clusterrun.Receiver
	procs []*clusterrun.Proc
	ids   clusterrun.IDs
	acked clusterrun.Acked
}

// newClusterRig starts the NATS cluster and n relays; mod may change each
// relay's configuration.
func newClusterRig(t *testing.T, nopts natscluster.Options, n int, mod func(i int, c *clusterrun.RelayConfig)) *clusterRig {
	t.Helper()
	bin := relayBinary(t)
	g := &clusterRig{t: t, nc: natscluster.Start(t, nopts)}
	rcv, err := clusterrun.NewReceiver()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rcv.Close)
	g.rcv = rcv
	dir := t.TempDir()
	for i := range n {
		addr, err := clusterrun.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		c := clusterrun.RelayConfig{
			Listen: addr, DataDir: filepath.Join(dir, fmt.Sprintf("data%d", i+1)), Webhook: rcv.URL(),
			Servers: g.nc.URLs(), Lanes: 4, LeaseTTL: "2s", Owner: fmt.Sprintf("relay-%d", i+1), Rules: true,
		}
		if mod != nil {
			mod(i, &c)
		}
		cfg := filepath.Join(dir, fmt.Sprintf("relay%d.json", i+1))
		if err := os.WriteFile(cfg, c.JSON(), 0o600); err != nil {
			t.Fatal(err)
		}
		p := &clusterrun.Proc{Bin: bin, Config: cfg, LogPath: filepath.Join(dir, fmt.Sprintf("relay%d.log", i+1)), Addr: addr, Owner: c.Owner}
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatalf("%v\n%s", err, logTail(p.LogPath, 3000))
		}
		t.Cleanup(p.Kill)
		g.procs = append(g.procs, p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range g.procs {
				t.Logf("%s log tail:\n%s", p.Owner, logTail(p.LogPath, 3000))
			}
		}
	})
	return g
}

func (g *clusterRig) addrs() []string {
	out := make([]string, len(g.procs))
	for i, p := range g.procs {
		out[i] = p.Addr
	}
	return out
}

// produce runs k producers over every relay until the returned stop is
// called (which waits for them).
func (g *clusterRig) produce(k int, pause time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range k {
		p := &clusterrun.Producer{Name: fmt.Sprintf("p%d", i), Addrs: g.addrs(), Keys: 8, Batch: 10, IDs: &g.ids, Acked: &g.acked, Pause: pause}
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx) }()
	}
	return func() { cancel(); wg.Wait() }
}

// waitAcked waits until the producers have more than n events acknowledged.
func (g *clusterRig) waitAcked(n int, timeout time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for len(g.acked.IDs()) <= n {
		if time.Now().After(deadline) {
			g.t.Fatalf("ingest did not progress past %d acknowledged events in %v (answers %v)", n, timeout, g.acked.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify waits until every acknowledged event was delivered and checks
// the order per object; it returns the summary.
func (g *clusterRig) verify(failovers []time.Duration) clusterrun.Summary {
	g.t.Helper()
	g.rcv.SetDown(false)
	ids := g.acked.IDs()
	if len(ids) == 0 {
		g.t.Fatalf("nothing was acknowledged (answers %v)", g.acked.Status())
	}
	deadline := time.Now().Add(120 * time.Second)
	for !g.rcv.Has(ids) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	s := clusterrun.Summarize(&g.acked, g.rcv, failovers)
	g.t.Log(s.String())
	if s.Lost > 0 {
		g.t.Errorf("%d acknowledged events never delivered (first: %v)", s.Lost, s.LostIDs)
	}
	for _, v := range s.OrderViolations {
		g.t.Errorf("order: %s", v)
	}
	return s
}

// flap takes the receiver down for 300 ms every 1.5 s until stop.
func (g *clusterRig) flap() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			g.rcv.SetDown(true)
			select {
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
			}
			g.rcv.SetDown(false)
			select {
			case <-time.After(1200 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}()
	return func() { cancel(); <-done; g.rcv.SetDown(false) }
}

// TestClusterRelayKill kills one relay process of three with SIGKILL,
// repeatedly, during ingest and delivery with the receiver flapping:
// every event answered 200 is delivered at least once, in order per
// object, and the killed relay's lanes are taken over by the others.
func TestClusterRelayKill(t *testing.T) {
	g := newClusterRig(t, natscluster.Options{}, 3, nil)
	stopFlap := g.flap()
	stopProd := g.produce(3, 0)
	g.waitAcked(0, 30*time.Second)
	kills := 3
	if *clusterLong {
		kills = 12
	}
	var failovers, resumed []time.Duration
	for k := range kills {
		time.Sleep(1500 * time.Millisecond)
		// The relay holding the most lanes, as another one sees them.
		victim, survivor := g.procs[k%3], g.procs[(k+1)%3]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lanes, err := clusterrun.Lanes(ctx, survivor.Addr)
		cancel()
		if err != nil {
			t.Fatalf("lanes: %v", err)
		}
		owned := clusterrun.OwnedBy(lanes, victim.Owner)
		before := len(g.acked.IDs())
		victim.Kill()
		killed := time.Now()
		if len(owned) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			d, err := clusterrun.WaitTakenOver(ctx, survivor.Addr, victim.Owner, owned, killed)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			// Delivering again, as the receiver sees it: the lanes' new
			// owner has started their loops over their backlog.
			ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
			r, err := clusterrun.WaitDelivering(ctx, g.rcv, owned, nil, killed)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("kill %d: %s held %v; taken over %.2fs, delivering again %.2fs after kill -9 (%d acknowledged so far)", k+1, victim.Owner, owned, d.Seconds(), r.Seconds(), before)
			failovers = append(failovers, d)
			resumed = append(resumed, r)
		}
		g.waitAcked(before, 30*time.Second) // ingest goes on through the others
		if err := victim.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	stopProd()
	stopFlap()
	s := g.verify(failovers)
	if len(failovers) == 0 {
		t.Error("no killed relay held a lane: failover was not exercised")
	}
	fmt.Fprintf(os.Stderr, "cluster relay-kill: %s\n", s)
	fmt.Fprintf(os.Stderr, "cluster relay-kill: delivering again after kill -9 (receiver flapping 300 ms in 1.5 s):")
	for _, d := range resumed {
		fmt.Fprintf(os.Stderr, " %.2fs", d.Seconds())
	}
	fmt.Fprintln(os.Stderr)
}

// TestClusterNATSFaults kills one NATS server mid-stream and restarts it
// (nothing acknowledged is lost, ingest goes on), then kills two: POSTs
// answer 503, never 200, until they return and ingest resumes.
func TestClusterNATSFaults(t *testing.T) {
	g := newClusterRig(t, natscluster.Options{}, 2, func(i int, c *clusterrun.RelayConfig) { c.Lanes = 2 })
	stopProd := g.produce(2, 5*time.Millisecond)
	g.waitAcked(0, 30*time.Second)

	// One server of three.
	g.nc.Kill(t, 1)
	before := len(g.acked.IDs())
	g.waitAcked(before, 60*time.Second)
	g.nc.Restart(t, 1)
	g.nc.WaitHealthy(t)
	g.waitAcked(len(g.acked.IDs()), 60*time.Second)

	// Two servers of three: no quorum.
	stopProd()
	g.nc.Kill(t, 2)
	g.nc.Kill(t, 3)
	c := &http.Client{Timeout: 30 * time.Second}
	probes := 0
	for _, addr := range g.addrs() {
		for i := range 3 {
			id := g.ids.Take(1)
			code := clusterrun.Post(context.Background(), c, addr, clusterrun.Record(fmt.Sprintf("probe-%d.jpg", i), id))
			probes++
			if code != http.StatusServiceUnavailable {
				t.Errorf("POST to %s with two NATS servers of three down: got %d, want 503", addr, code)
			}
		}
	}
	t.Logf("%d POSTs without quorum answered 503", probes)
	g.nc.Restart(t, 2)
	g.nc.Restart(t, 3)
	g.nc.WaitHealthy(t)
	stopProd = g.produce(2, 5*time.Millisecond)
	g.waitAcked(len(g.acked.IDs()), 60*time.Second)
	stopProd()
	s := g.verify(nil)
	fmt.Fprintf(os.Stderr, "cluster nats-faults: %s\n", s)
}

// TestClusterPartition cuts one NATS server off from the other two: a
// relay connected only to it refuses every event (503), the others go on,
// and after the heal nothing acknowledged is missing.
func TestClusterPartition(t *testing.T) {
	var nc *natscluster.Cluster
	g := newClusterRig(t, natscluster.Options{Partitionable: true}, 3, func(i int, c *clusterrun.RelayConfig) {
		c.Lanes = 2
		if i == 0 {
			c.Servers = c.Servers[:1] // relay-1 talks to node 1 only
		} else {
			c.Servers = c.Servers[1:]
		}
	})
	nc = g.nc
	stopProd := g.produce(2, 5*time.Millisecond)
	g.waitAcked(0, 30*time.Second)
	nc.Isolate(t, 1)
	c := &http.Client{Timeout: 30 * time.Second}
	minority := g.procs[0].Addr
	for i := range 4 {
		code := clusterrun.Post(context.Background(), c, minority, clusterrun.Record(fmt.Sprintf("minority-%d.jpg", i), g.ids.Take(1)))
		if code == http.StatusOK {
			t.Errorf("POST to the relay on the isolated server: got 200, want 503")
		}
	}
	before := len(g.acked.IDs())
	g.waitAcked(before, 60*time.Second) // the majority side goes on
	nc.Heal(t, 1)
	g.waitAcked(len(g.acked.IDs()), 60*time.Second)
	stopProd()
	s := g.verify(nil)
	fmt.Fprintf(os.Stderr, "cluster partition: %s\n", s)
}

// TestClusterRules sets a bucket's rules through one relay and reads them
// from another, which then routes by them.
func TestClusterRules(t *testing.T) {
	g := newClusterRig(t, natscluster.Options{}, 2, func(i int, c *clusterrun.RelayConfig) { c.Rules = false; c.Lanes = 1 })
	put := `<NotificationConfiguration><QueueConfiguration><Id>1</Id><Queue>` + clusterrun.TargetARN +
		`</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>`
	req, _ := http.NewRequest(http.MethodPut, "http://"+g.procs[0].Addr+"/v1/buckets/images/notification", strings.NewReader(put))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT notification on relay-1: got %d, want 200", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + g.procs[1].Addr + "/v1/buckets/images/notification")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), clusterrun.TargetARN) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET notification on relay-2: got %s, want the rule set on relay-1", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := &clusterrun.Producer{Name: "r", Addrs: []string{g.procs[1].Addr}, Keys: 2, Batch: 5, Limit: 4, IDs: &g.ids, Acked: &g.acked}
	p.Run(context.Background())
	g.verify(nil)

	// relay status reads the same cluster read-only: one lane, owned,
	// its cursor past the delivered events (the cursor is committed a
	// moment after delivery).
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, err := exec.Command(relayBinary(t), "status", "--config", g.procs[0].Config, "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("relay status: %v\n%s", err, out)
		}
		var rep jslog.Report
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("relay status --json: %v\n%s", err, out)
		}
		if len(rep.Lanes) == 1 && rep.Lanes[0].Target == clusterrun.TargetARN && rep.Lanes[0].Lag == 0 &&
			strings.HasPrefix(rep.Lanes[0].Owner, "relay-") && len(rep.Members) == 2 && rep.Records == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay status --json: got %s, want one lane of %s owned by a relay, lag 0, 2 members", out, clusterrun.TargetARN)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := exec.Command(relayBinary(t), "status", "--config", g.procs[0].Config).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TARGET") || !strings.Contains(string(out), clusterrun.TargetARN) {
		t.Fatalf("relay status: %v\n%s", err, out)
	}
	t.Logf("relay status:\n%s", out)
}
