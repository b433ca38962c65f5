package main

// Scenario "cluster": three relay processes on a three-node JetStream
// cluster (R3 stream, sync_interval always). HTTP ingest spread over the
// relays beside a direct nats.go asynchronous publisher to an R3 stream of
// the same configuration, the drain of one webhook target with 1 and 4
// lanes, and the failover time after kill -9 of a relay.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/internal/clusterrun"
)

func init() { harness.Register("cluster", runCluster) }

// clusterBench holds what the phases share.
type clusterBench struct {
	o     harness.Options
	bin   string
	urls  []string
	rcv   *clusterrun.Receiver
	procs []*clusterrun.Proc
}

func runCluster(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	d := min(o.Duration, 5*time.Second)
	drainN := 20000
	if o.Quick {
		d, drainN = 2*time.Second, 4000
	}
	nc, err := harness.StartNATSCluster(filepath.Join(o.Dir, "nats"), 21222)
	if err != nil {
		return res, err
	}
	defer nc.Stop()
	bin, err := harness.BuildRelay(o.Dir)
	if err != nil {
		return res, err
	}
	rcv, err := clusterrun.NewReceiver()
	if err != nil {
		return res, err
	}
	defer rcv.Close()
	b := &clusterBench{o: o, bin: bin, urls: nc.URLs, rcv: rcv}
	defer b.stop()
	res.Notes = append(res.Notes,
		"three nats-server 2.15.2 nodes (sync_interval always) and three relay processes share one 2-core machine with the load generator: the figures compare, they do not measure absolute speed",
		fmt.Sprintf("ingest: 16 HTTP clients, each POSTing 100 records (%d bytes of JSON each) at a time to the relays in turn, for %v after a warm-up; latency is per POST, to its 200 (the stream's PubAck); the webhook target answers 503 meanwhile, so the relays log without delivering, as the baseline does", harness.RecordSize(), d),
		"baseline: one nats.go jetstream.PublishAsync publisher (256 in flight) to an R3 stream configured as the relay's, each message the body of one POST (100 records, uncompressed); the relay compresses its group commits",
	)

	// Ingest through the relays, events routed to a webhook that accepts,
	// with one group commit in flight per relay (the default) and four.
	pool := harness.RecordPool(4096)
	bodies := make([][]byte, 64)
	for i := range bodies {
		k := (i * 100) % (len(pool) - 100)
		bodies[i] = clusterrun.Body(pool[k : k+100]...)
	}
	loads := map[int]harness.Load{}
	for _, mif := range []int{1, 4} {
		l, err := b.ingest(ctx, mif, bodies, d)
		if err != nil {
			return res, fmt.Errorf("cluster ingest, maxInFlight %d: %w", mif, err)
		}
		loads[mif] = l
	}
	base, err := baselineRate(ctx, nc.URLs, bodies, d)
	if err != nil {
		return res, fmt.Errorf("baseline publisher: %w", err)
	}
	res.Add("nats.go async publisher → R3 (baseline)", base, "events/s", "")
	for _, mif := range []int{1, 4} {
		l := loads[mif]
		res.Add(fmt.Sprintf("ingest 16×100 over 3 relays → R3, maxInFlight %d", mif), l.Rate, "events/s", "")
		res.Add(fmt.Sprintf("ingest p50, maxInFlight %d", mif), l.P50, "ms", "")
		res.Add(fmt.Sprintf("ingest p99, maxInFlight %d", mif), l.P99, "ms", "")
		res.Add(fmt.Sprintf("relay / baseline, maxInFlight %d", mif), l.Rate/base, "×", "≥ 0.5")
	}

	// Drain of one webhook target, 1 and 4 lanes over 3 relays.
	res.Notes = append(res.Notes, fmt.Sprintf("drain: %d events (small records) posted while the webhook answers 503, then the rate at which the three relays deliver them once it accepts; the receiver answers at once", drainN))
	var ids clusterrun.IDs
	for _, lanes := range []int{1, 4} {
		rate, err := b.drain(ctx, fmt.Sprintf("DRAIN%d", lanes), lanes, drainN, &ids)
		if err != nil {
			return res, fmt.Errorf("drain, %d lanes: %w", lanes, err)
		}
		res.Add(fmt.Sprintf("drain, webhook, %d lane(s)", lanes), rate, "events/s", "")
	}

	// Failover: kill -9 the relay holding the most lanes (default lease
	// TTL, 3 s).
	fo, err := b.failover(ctx)
	if err != nil {
		return res, fmt.Errorf("failover: %w", err)
	}
	res.Add("failover after kill -9 (lease TTL 3s)", fo.Seconds()*1000, "ms", "< 5000 after the lease expires")
	res.Notes = append(res.Notes, "failover: from kill -9 of the relay holding the most of 4 lanes until GET /v1/cluster on another shows each of its lanes held by a live relay (default leaseTTL 3s)")
	return res, nil
}

// start (re)starts three relays on stream with lanes lanes of the webhook.
func (b *clusterBench) start(stream string, lanes int, ttl string, maxInFlight int) error {
	b.stop()
	dir := filepath.Join(b.o.Dir, "relays-"+stream)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		addr, err := clusterrun.FreeAddr()
		if err != nil {
			return err
		}
		c := clusterrun.RelayConfig{
			Listen: addr, DataDir: filepath.Join(dir, fmt.Sprintf("d%d", i)), Webhook: b.rcv.URL(), Servers: b.urls,
			Stream: stream, Lanes: lanes, LeaseTTL: ttl, Owner: fmt.Sprintf("relay-%d", i), Rules: true, FullWait: "10s", MaxInFlight: maxInFlight,
		}
		cfg := filepath.Join(dir, fmt.Sprintf("relay%d.json", i))
		if err := os.WriteFile(cfg, c.JSON(), 0o600); err != nil {
			return err
		}
		p := &clusterrun.Proc{Bin: b.bin, Config: cfg, LogPath: filepath.Join(dir, fmt.Sprintf("relay%d.log", i)), Addr: addr, Owner: c.Owner}
		if err := p.Start(60 * time.Second); err != nil {
			return err
		}
		b.procs = append(b.procs, p)
	}
	return nil
}

func (b *clusterBench) stop() {
	for _, p := range b.procs {
		p.Stop()
	}
	b.procs = nil
}

// ingest measures 16 HTTP clients POSTing bodies to the three relays.
func (b *clusterBench) ingest(ctx context.Context, maxInFlight int, bodies [][]byte, d time.Duration) (harness.Load, error) {
	// The webhook answers 503 meanwhile: the relays log, and retry
	// delivery slowly (maxBackoff), as the baseline only publishes.
	b.rcv.SetDown(true)
	defer b.rcv.SetDown(false)
	if err := b.start(fmt.Sprintf("ING%d", maxInFlight), 1, "3s", maxInFlight); err != nil {
		return harness.Load{}, err
	}
	defer b.stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 30 * time.Second}
	return harness.ClosedLoop(ctx, 16, d, func(w, i int) (int, error) {
		addr := b.procs[(w+i)%len(b.procs)].Addr
		resp, err := client.Post("http://"+addr+"/v1/events", "application/json", bytes.NewReader(bodies[(w*31+i)%len(bodies)]))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("POST: %s", resp.Status)
		}
		return 100, nil
	})
}

// drain posts n events while the receiver is down, then measures how fast
// they are delivered once it is up.
func (b *clusterBench) drain(ctx context.Context, stream string, lanes, n int, ids *clusterrun.IDs) (float64, error) {
	b.rcv.SetDown(true)
	defer b.rcv.SetDown(false)
	if err := b.start(stream, lanes, "3s", 0); err != nil {
		return 0, err
	}
	defer b.stop()
	// Every lane must be held before the clock starts.
	if !harness.WaitFor(ctx, 30*time.Second, func() bool {
		ls, err := clusterrun.Lanes(ctx, b.procs[0].Addr)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" {
				return false
			}
		}
		return len(ls) == lanes
	}) {
		return 0, fmt.Errorf("the %d lanes were not all taken", lanes)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	first := ids.Take(n)
	want := make([]int, n)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w * 100; k < n; k += 800 {
				recs := make([]event.Record, 0, 100)
				for i := k; i < min(k+100, n); i++ {
					want[i] = first + i
					recs = append(recs, clusterrun.Record(fmt.Sprintf("d%d.jpg", i%997), first+i))
				}
				if code := clusterrun.Post(ctx, c, b.procs[(k/100)%3].Addr, recs...); code != http.StatusOK {
					errc <- fmt.Errorf("loading the backlog: POST answered %d", code)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	start := time.Now()
	b.rcv.SetDown(false)
	if !harness.WaitFor(ctx, 5*time.Minute, func() bool { return b.rcv.Has(want) }) {
		return 0, fmt.Errorf("the backlog was not delivered in 5 minutes")
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// failover kills the relay holding the most lanes and returns how long
// until the others hold them.
func (b *clusterBench) failover(ctx context.Context) (time.Duration, error) {
	if err := b.start("FAILOVER", 4, "", 0); err != nil {
		return 0, err
	}
	defer b.stop()
	var ls []clusterrun.Lane
	if !harness.WaitFor(ctx, 30*time.Second, func() bool {
		var err error
		ls, err = clusterrun.Lanes(ctx, b.procs[0].Addr)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.Owner == "" {
				return false
			}
		}
		return len(ls) == 4
	}) {
		return 0, fmt.Errorf("the lanes were not all taken")
	}
	victim := b.procs[0]
	for _, p := range b.procs {
		if len(clusterrun.OwnedBy(ls, p.Owner)) > len(clusterrun.OwnedBy(ls, victim.Owner)) {
			victim = p
		}
	}
	survivor := b.procs[0]
	if survivor == victim {
		survivor = b.procs[1]
	}
	owned := clusterrun.OwnedBy(ls, victim.Owner)
	victim.Kill()
	killed := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return clusterrun.WaitTakenOver(wctx, survivor.Addr, victim.Owner, owned, killed)
}

// baselineRate publishes the bodies to an R3 stream configured as the
// relay's, asynchronously, and returns records/s (100 per message).
func baselineRate(ctx context.Context, urls []string, bodies [][]byte, d time.Duration) (float64, error) {
	nc, err := nats.Connect(urls[0] + "," + urls[1] + "," + urls[2])
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return 0, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(sctx, jetstream.StreamConfig{
		Name: "BASELINE", Subjects: []string{"BASELINE.records"}, Retention: jetstream.LimitsPolicy,
		Discard: jetstream.DiscardNew, MaxBytes: 1 << 30, MaxMsgs: 1_000_000, Storage: jetstream.FileStorage,
		Replicas: 3, Duplicates: 2 * time.Minute,
	}); err != nil {
		return 0, err
	}
	warm := time.Now().Add(d / 10)
	end := warm.Add(d)
	var acked int64
	var mu sync.Mutex
	var start time.Time
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		// Wait as long as it takes for room among the 256 in flight.
		f, err := js.PublishAsync("BASELINE.records", bodies[i%len(bodies)], jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return 0, err
		}
		counted := time.Now().After(warm)
		if counted && start.IsZero() {
			start = time.Now()
		}
		go func() {
			select {
			case <-f.Ok():
				if counted {
					mu.Lock()
					acked += 100
					mu.Unlock()
				}
			case <-f.Err():
			}
		}()
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("async publishes not acknowledged in 30 s")
	}
	mu.Lock()
	defer mu.Unlock()
	return float64(acked) / time.Since(start).Seconds(), nil
}
