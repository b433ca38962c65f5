package main

// Scenario "outage": a webhook receiver goes down for o.Outage under a
// steady load and comes back; the relay must drain the backlog with no
// event lost.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
)

func init() { harness.Register("outage", runOutage) }

// sample is one 250 ms reading.
type sample struct {
	t         float64 // seconds since the start
	pending   int64
	delivered uint64
	rate      float64 // delivered/s over the last interval
}

func runOutage(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	const offered = 5_000
	lead, tail := 5*time.Second, 3*time.Second
	if o.Quick {
		lead, tail = time.Second, time.Second
	}
	stopProfile, err := harness.StartProfile(o, "outage")
	if err != nil {
		return res, err
	}
	defer stopProfile()
	r, rv, stop, err := harness.StartWebhook(filepath.Join(o.Dir, "relay"), "")
	if err != nil {
		return res, err
	}
	defer stop()

	start := time.Now()
	var mu sync.Mutex
	var samples []sample
	sctx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var last sample
		for {
			select {
			case <-tick.C:
			case <-sctx.Done():
				return
			}
			p, dl := harness.Pending(r)
			s := sample{t: time.Since(start).Seconds(), pending: p, delivered: dl}
			if last.t > 0 {
				s.rate = float64(dl-last.delivered) / (s.t - last.t)
			}
			last = s
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	}()
	p := &harness.Pacer{Relay: r, Rate: offered, Batch: 10}
	lctx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() { p.Run(lctx, 32); close(loaded) }()
	defer func() { stopLoad(); <-loaded; stopSampling(); <-sampled }()

	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !sleep(lead) {
		return res, ctx.Err()
	}
	tDown := time.Since(start).Seconds()
	rv.Stop()
	if !sleep(o.Outage) {
		return res, ctx.Err()
	}
	backlog, dlUp := harness.Pending(r)
	if err := rv.Start(); err != nil {
		return res, err
	}
	up := time.Now()
	tUp := up.Sub(start).Seconds()
	// The first delivery after recovery waits for the retry backoff.
	if !harness.WaitFor(ctx, 2*time.Minute, func() bool { _, dl := harness.Pending(r); return dl > dlUp }) {
		return res, fmt.Errorf("nothing delivered within 2 minutes after the receiver came back")
	}
	first := time.Now()
	// Drained: the backlog is back to what 100 ms of load leaves in flight.
	limit := 2*o.Outage + time.Minute
	didDrain := harness.WaitFor(ctx, limit, func() bool { pd, _ := harness.Pending(r); return pd <= offered/10 })
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if !didDrain {
		res.Notes = append(res.Notes, fmt.Sprintf("the backlog did not drain within %v under the load: delivery is slower than the offered load here; the drain figures below are up to that point", limit))
	}
	drained := time.Now()
	_, dlDrained := harness.Pending(r)
	if !sleep(tail) {
		return res, ctx.Err()
	}
	stopLoad()
	<-loaded
	published := int(p.Published())
	if !harness.WaitFor(ctx, 5*time.Minute, func() bool { u, _ := rv.Counts(); return u >= published }) {
		res.Notes = append(res.Notes, "not every event was received within 5 minutes after the load stopped")
	}
	time.Sleep(500 * time.Millisecond) // let late duplicates, if any, arrive
	stopSampling()
	<-sampled
	lost := rv.Missing(published)
	_, dups := rv.Counts()

	drain := drained.Sub(up).Seconds()
	active := drained.Sub(first).Seconds()
	res.Add("offered load", float64(published)/time.Since(start).Seconds(), "events/s", "5000")
	res.Add("outage", o.Outage.Seconds(), "s", "")
	res.Add("backlog when the receiver came back", float64(backlog), "events", "")
	res.Add("time from recovery to first delivery (retry backoff)", first.Sub(up).Seconds(), "s", "")
	res.Add("time to drain (recovery → backlog ≤ 500)", drain, "s", "")
	res.Add("drain rate, net of new load (backlog / time to drain)", float64(backlog)/drain, "events/s", "")
	if active > 0 {
		res.Add("delivered rate while draining (first delivery → drained)", float64(dlDrained-dlUp)/active, "events/s", "")
	}
	mu.Lock()
	peak := 0.0
	for _, s := range samples {
		if s.t > tUp {
			peak = max(peak, s.rate)
		}
	}
	res.Add("peak delivered rate (250 ms samples)", peak, "events/s", "")
	res.Add("published", float64(published), "events", "")
	res.Add("lost", float64(lost), "events", "0")
	res.Add("duplicates", float64(dups), "events", "")
	if n, last := p.Errors(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d publish errors, last: %s", n, last))
	}
	res.Notes = append(res.Notes,
		fmt.Sprintf("webhook target from a config with default relay settings (fsync on, retry backoff 100 ms doubling up to 30 s); the receiver closes its listener and connections for %v, then listens again on the same port", o.Outage),
		"a paced publisher offers 5,000 stamped events/s (calls of up to 10 records) for the whole run; lost = ids never received, duplicates = receipts beyond the first")

	c := &harness.Chart{
		Title: fmt.Sprintf("Webhook outage of %v under %d events/s: backlog and delivered rate", o.Outage, offered),
		Left:  harness.Series{Name: "backlog (pending events)", Color: "#c0392b"},
		Right: harness.Series{Name: "delivered events/s", Color: "#2471a3"},
		Spans: []harness.Span{{From: tDown, To: tUp, Label: "receiver down"}},
		Marks: []harness.Span{{From: first.Sub(start).Seconds(), Label: "first delivery"}, {From: drained.Sub(start).Seconds(), Label: "drained"}},
	}
	for _, s := range samples {
		c.X = append(c.X, s.t)
		c.Left.Y = append(c.Left.Y, float64(s.pending))
		c.Right.Y = append(c.Right.Y, s.rate)
	}
	mu.Unlock()
	dir := "bench"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = filepath.Dir(o.Dir)
	}
	path := filepath.Join(dir, "outage.svg")
	if err := c.Write(path); err != nil {
		return res, err
	}
	res.Files = append(res.Files, path)
	return res, nil
}
