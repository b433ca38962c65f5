// Command clusterdemo is `make cluster-demo`: three relay processes on a
// three-node JetStream cluster (scripts/cluster.sh, in its own directory
// and ports), a stream of events posted to all three, one relay killed
// with SIGKILL while delivery runs, and a summary: events acknowledged,
// delivered, lost, duplicates, and how long after the kill its lanes were
// taken over. It exits 1 if an acknowledged event was lost.
//
//	go run ./internal/clusterdemo [-seconds 8] [-lanes 4] [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
)

func main() {
	seconds := flag.Int("seconds", 8, "how long events are posted")
	lanes := flag.Int("lanes", 4, "lanes of the webhook target")
	keep := flag.Bool("keep", false, "keep the cluster's and relays' files (their path is printed)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("[cluster-demo] ")
	if err := run(*seconds, *lanes, *keep); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(seconds, lanes int, keep bool) error {
	dir, err := os.MkdirTemp("", "bucketrelay-cluster-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	} else {
		log.Printf("files in %s", dir)
	}
	// The cluster: scripts/cluster.sh, on ports other than `make cluster`'s.
	env := append(os.Environ(), "CLUSTER_DIR="+filepath.Join(dir, "nats"),
		"CLUSTER_CLIENT_PORT=24222", "CLUSTER_ROUTE_PORT=26222", "CLUSTER_HTTP_PORT=28222")
	script := func(args ...string) (string, error) {
		cmd := exec.Command("scripts/cluster.sh", args...)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	log.Print("starting a 3-node JetStream cluster (scripts/cluster.sh; the first run builds nats-server, about 2 minutes)")
	if _, err := script("start"); err != nil {
		return fmt.Errorf("starting the cluster: %w", err)
	}
	defer script("stop")
	urls, err := script("urls")
	if err != nil {
		return err
	}
	log.Print("building the relay")
	bin := filepath.Join(dir, "relay")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/relay").CombinedOutput(); err != nil {
		return fmt.Errorf("building the relay: %v\n%s", err, out)
	}
	rcv, err := clusterrun.NewReceiver()
	if err != nil {
		return err
	}
	defer rcv.Close()

	var procs []*clusterrun.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for i := 1; i <= 3; i++ {
		addr, err := clusterrun.FreeAddr()
		if err != nil {
			return err
		}
		c := clusterrun.RelayConfig{
			Listen: addr, DataDir: filepath.Join(dir, fmt.Sprintf("relay%d", i)), Webhook: rcv.URL(),
			Servers: strings.Split(urls, ","), Lanes: lanes, LeaseTTL: "2s", Owner: fmt.Sprintf("relay-%d", i), Rules: true,
		}
		cfg := filepath.Join(dir, fmt.Sprintf("relay%d.json", i))
		if err := os.WriteFile(cfg, c.JSON(), 0o600); err != nil {
			return err
		}
		p := &clusterrun.Proc{Bin: bin, Config: cfg, LogPath: filepath.Join(dir, fmt.Sprintf("relay%d.log", i)), Addr: addr, Owner: c.Owner}
		if err := p.Start(60 * time.Second); err != nil {
			return err
		}
		procs = append(procs, p)
		log.Printf("%s listening on %s", c.Owner, addr)
	}
	addrs := []string{procs[0].Addr, procs[1].Addr, procs[2].Addr}

	var ids clusterrun.IDs
	var acked clusterrun.Acked
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 3 {
		p := &clusterrun.Producer{Name: fmt.Sprintf("p%d", i), Addrs: addrs, Keys: 8, Batch: 10, IDs: &ids, Acked: &acked, Pause: 10 * time.Millisecond}
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx) }()
	}
	log.Printf("posting events to the three relays for %ds", seconds)
	time.Sleep(time.Duration(seconds) * time.Second / 2)

	// Kill the relay holding the most lanes.
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	ls, err := clusterrun.Lanes(lctx, procs[0].Addr)
	lcancel()
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	victim, survivor := procs[0], procs[1]
	for _, p := range procs {
		if len(clusterrun.OwnedBy(ls, p.Owner)) > len(clusterrun.OwnedBy(ls, victim.Owner)) {
			victim = p
		}
	}
	for _, p := range procs {
		if p != victim {
			survivor = p
		}
	}
	owned := clusterrun.OwnedBy(ls, victim.Owner)
	log.Printf("kill -9 %s, which drains lanes %v", victim.Owner, owned)
	victim.Kill()
	killed := time.Now()
	var failovers []time.Duration
	if len(owned) > 0 {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		d, err := clusterrun.WaitTakenOver(wctx, survivor.Addr, victim.Owner, owned, killed)
		wcancel()
		if err != nil {
			log.Print(err)
		} else {
			log.Printf("its lanes were taken over %.2fs after the kill", d.Seconds())
			failovers = append(failovers, d)
		}
	}
	time.Sleep(time.Until(killed.Add(time.Duration(seconds) * time.Second / 2)))
	cancel()
	wg.Wait()
	log.Print("waiting for delivery of every acknowledged event")
	all := acked.IDs()
	deadline := time.Now().Add(60 * time.Second)
	for !rcv.Has(all) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	s := clusterrun.Summarize(&acked, rcv, failovers)
	fmt.Printf("\nCluster demo: 3 NATS servers (R3 stream), 3 relays, %d lanes, one relay killed with SIGKILL\n", lanes)
	fmt.Printf("  events acknowledged (HTTP 200): %d\n", s.Acknowledged)
	fmt.Printf("  delivered at least once:        %d\n", s.Delivered)
	fmt.Printf("  lost:                           %d\n", s.Lost)
	fmt.Printf("  duplicate deliveries:           %d\n", s.Duplicates)
	fmt.Printf("  per-object order violations:    %d\n", len(s.OrderViolations))
	if len(s.Failovers) > 0 {
		fmt.Printf("  failover (kill -9 to lanes taken): %.2fs (lease TTL 2s)\n", s.Failovers[0].Seconds())
	}
	fmt.Printf("  POST answers: %v (0: the killed relay did not answer; the sender moved on)\n", s.Status)
	if s.Lost > 0 || len(s.OrderViolations) > 0 {
		return fmt.Errorf("acknowledged events lost (%v) or out of order (%v)", s.LostIDs, s.OrderViolations)
	}
	return nil
}
