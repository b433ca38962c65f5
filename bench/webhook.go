package main

// Scenario "webhook": delivery end to end to a local keep-alive receiver:
// the delivered rate, and publish-to-receipt latency at a paced load.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/event"
)

func init() { harness.Register("webhook", runWebhook) }

func runWebhook(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	d := o.Duration
	if o.Quick {
		d = min(d, time.Second)
	}
	stopProfile, err := harness.StartProfile(o, "webhook")
	if err != nil {
		return res, err
	}
	defer stopProfile()
	r, rv, stop, err := harness.StartWebhook(filepath.Join(o.Dir, "relay"), "")
	if err != nil {
		return res, err
	}
	defer stop()
	pool := harness.RecordPool(4096)

	// 1. Delivered rate: publishers keep a backlog of 20,000–100,000
	// events so the drain loop never waits for input.
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var feedErr error
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; fctx.Err() == nil; i++ {
				if p, _ := harness.Pending(r); p > 100_000 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				k := (w*4001 + i*100) % (len(pool) - 100)
				if err := r.Publish(fctx, pool[k:k+100]...); err != nil && fctx.Err() == nil {
					feedErr = err
					return
				}
			}
		}()
	}
	harness.WaitFor(ctx, 30*time.Second, func() bool { p, _ := harness.Pending(r); return p > 20_000 })
	b0, t0 := rv.Bodies(), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	b1, t1 := rv.Bodies(), time.Now()
	stopFeed()
	wg.Wait()
	if feedErr != nil {
		return res, feedErr
	}
	rate := float64(b1-b0) / t1.Sub(t0).Seconds()
	res.Add("delivered rate with concurrent ingest (backlog kept ≥ 20k)", rate, "events/s", "≥ 20000")
	// What is left is drained with no ingest running.
	b2, t2, c2 := rv.Bodies(), time.Now(), harness.CPUTime()
	if !harness.WaitFor(ctx, 5*time.Minute, func() bool { p, _ := harness.Pending(r); return p == 0 }) {
		return res, fmt.Errorf("backlog did not drain after the rate run")
	}
	b3, t3, c3 := rv.Bodies(), time.Now(), harness.CPUTime()
	if b3-b2 >= 10_000 {
		res.Add(fmt.Sprintf("delivered rate draining the remaining %d events, no ingest", b3-b2), float64(b3-b2)/t3.Sub(t2).Seconds(), "events/s", "≥ 20000")
		res.Add("  CPU per delivered event (relay and receiver)", float64(c3-c2)/float64(time.Microsecond)/float64(b3-b2), "µs", "")
	}

	// The same receiver fed directly by one keep-alive net/http client with
	// the same bodies: the ceiling of a one-connection, one-POST-per-event
	// sender on this machine.
	direct, err := directPosts(ctx, rv.URL(), pool, min(d, 2*time.Second))
	if err != nil {
		return res, err
	}
	res.Add("direct net/http client, 1 connection, 1 POST per event", direct.Rate, "events/s", "")
	res.Add("  CPU per event (client and receiver)", direct.CPU, "µs", "")
	res.Add("ratio relay delivered (with ingest) / direct client", rate/direct.Rate, "×", "")

	// 2. Latency at a paced 10,000 events/s: each record carries its
	// publish time; the receiver subtracts it from its receipt time.
	const offered = 10_000
	rv.KeepLatencies(true)
	p := &harness.Pacer{Relay: r, Rate: offered, Batch: 10}
	pctx, stopPace := context.WithTimeout(ctx, d+d/5)
	done := make(chan struct{})
	go func() { p.Run(pctx, 32); close(done) }()
	// Discard the first sixth (warm-up).
	time.Sleep(d / 5)
	rv.TakeLatencies()
	<-done
	stopPace()
	published := int(p.Published())
	if !harness.WaitFor(ctx, time.Minute, func() bool { u, _ := rv.Counts(); return u >= published }) {
		return res, fmt.Errorf("paced run: %d of %d events received", func() int { u, _ := rv.Counts(); return u }(), published)
	}
	lat := rv.TakeLatencies()
	_, dups := rv.Counts()
	res.Add("paced run: offered", float64(published)/(d+d/5).Seconds(), "events/s", "10000")
	res.Add("paced run: publish-to-receipt p50", harness.Percentile(lat, 50), "ms", "")
	res.Add("paced run: publish-to-receipt p99", harness.Percentile(lat, 99), "ms", "< 25")
	res.Add("paced run: publish-to-receipt max", harness.Percentile(lat, 100), "ms", "")
	res.Add("paced run: lost", float64(rv.Missing(published)), "events", "0")
	res.Add("paced run: duplicates", float64(dups), "events", "")
	if n, last := p.Errors(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("paced run: %d publish errors, last: %s", n, last))
	}
	res.Notes = append(res.Notes,
		"relay built from a config (notify.webhook.1 → the bench's own net/http receiver on loopback, keep-alive); default relay settings, fsync on",
		"the relay posts to an http:// endpoint with the webhook's own HTTP/1.1 client (adapters/webhook/h1.go), the direct row with net/http's: a ratio above 1 is the clients' difference (BenchmarkSend in adapters/webhook compares them alone)",
		fmt.Sprintf("paced run: a 1 ms ticker hands calls of up to 10 stamped records to 32 publisher goroutines for %v; latency = receipt time − time stamped into the record just before Publish (so it includes the fsync wait), over the last %v", d+d/5, d))
	return res, nil
}

// directPosts posts one message body per request over one keep-alive
// connection for d and returns the rate.
func directPosts(ctx context.Context, url string, pool []event.Record, d time.Duration) (harness.Load, error) {
	bodies := make([][]byte, len(pool))
	for i := range pool {
		raw, _ := json.Marshal(pool[i])
		bodies[i] = event.AppendMessage(nil, string(pool[i].EventName), pool[i].Key(), raw)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	lr, err := harness.ClosedLoop(ctx, 1, d, func(_, i int) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return 1, nil
	})
	return lr, err
}
