package main

// Scenario "webhook-lanes": a webhook whose endpoint takes 2 ms per
// request, drained with 1 lane and with 8 (delivery.Policy.Lanes), each
// first with the webhook posting one event at a time (concurrency 1: what
// lanes add over one ordered sender) and then with its default
// concurrency; the receiver checks that each object's events arrive in
// log order.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bucketrelay/bucketrelay/adapters/webhook"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

func init() { harness.Register("webhook-lanes", runWebhookLanes) }

// lanesLatency is what the endpoint takes per request.
const lanesLatency = 2 * time.Millisecond

func runWebhookLanes(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	d := o.Duration
	if o.Quick {
		d = min(d, 2*time.Second)
	}
	rv, err := startOrderReceiver(lanesLatency)
	if err != nil {
		return res, err
	}
	defer rv.close()
	type setup struct{ lanes, concurrency int }
	rates := map[setup]float64{}
	for _, c := range []setup{{1, 1}, {8, 1}, {1, 0}, {8, 0}} {
		rate, err := lanesRate(ctx, filepath.Join(o.Dir, fmt.Sprintf("lanes-%d-c%d", c.lanes, c.concurrency)), rv, c.lanes, c.concurrency, d)
		if err != nil {
			return res, fmt.Errorf("%d lanes, concurrency %d: %w", c.lanes, c.concurrency, err)
		}
		rates[c] = rate
		conc := "concurrency 1"
		if c.concurrency == 0 {
			conc = fmt.Sprintf("default concurrency (%d)", webhook.DefaultConcurrency)
		}
		res.Add(fmt.Sprintf("delivered rate, %d lane(s), %s", c.lanes, conc), rate, "events/s", "")
	}
	res.Add("ratio 8 lanes / 1 lane, concurrency 1", rates[setup{8, 1}]/rates[setup{1, 1}], "×", "≥ 3")
	res.Add("ratio 1 lane default concurrency / concurrency 1", rates[setup{1, 0}]/rates[setup{1, 1}], "×", "")
	res.Add("ratio 8 lanes / 1 lane, default concurrency", rates[setup{8, 0}]/rates[setup{1, 0}], "×", "")
	res.Add("events out of order per key (receiver's check)", float64(rv.outOfOrder()), "events", "0")
	res.Notes = append(res.Notes,
		fmt.Sprintf("receiver answers each POST after %v; one webhook target (keep-alive, one POST per event), backlog prefilled, rate over %v of the drain", lanesLatency, d),
		"lanes split events by FNV-1a of bucket/object; each lane sends in order on its own goroutine; the webhook's concurrency posts a batch's objects side by side, each object's events one after another")
	return res, nil
}

// lanesRate prefills a backlog, drains it into a webhook target with the
// given lanes, and returns the delivered rate over d.
func lanesRate(ctx context.Context, dir string, rv *orderReceiver, lanes, concurrency int, d time.Duration) (float64, error) {
	tg, err := webhook.New(webhook.Config{Enable: true, Endpoint: rv.url(), Concurrency: concurrency}, harness.QuietLogger())
	if err != nil {
		return 0, err
	}
	p, err := harness.OpenPipeline(harness.PipelineConfig{Dir: dir, Target: tg, MaxBatch: webhook.Kind.MaxBatch,
		Policy: delivery.Policy{Lanes: lanes}})
	if err != nil {
		tg.Close()
		return 0, err
	}
	defer p.Close()
	// Enough for d at 8 lanes' ideal rate, with room: the drain must not
	// run dry while measured.
	senders := lanes * max(1, concurrency)
	if concurrency == 0 {
		senders = lanes * webhook.DefaultConcurrency
	}
	total := int(d.Seconds()*float64(senders)*float64(time.Second/lanesLatency)*1.5) + 5000
	pool := harness.NewPool(4096)
	for n := 0; n < total; n += 5000 {
		es := make([]*wal.Entry, min(5000, total-n))
		for i := range es {
			k := (n + i) % len(pool.Raws)
			es[i] = &wal.Entry{Targets: []string{p.ID}, Key: pool.Keys[k], Name: string(event.ObjectCreatedPut), Data: pool.Raws[k]}
		}
		if err := p.Append(ctx, es...); err != nil {
			return 0, err
		}
	}
	p.Run()
	warm := uint64(total / 20)
	if !harness.WaitFor(ctx, time.Minute, func() bool { return p.Stats().Delivered >= warm }) {
		return 0, fmt.Errorf("the first %d events not delivered in a minute (last error: %s)", warm, p.Stats().LastError)
	}
	start, t0 := p.Stats().Delivered, time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	got := p.Stats().Delivered - start
	if got >= uint64(total)-warm {
		return 0, fmt.Errorf("the backlog ran dry while measured")
	}
	return float64(got) / time.Since(t0).Seconds(), nil
}

// orderReceiver is a webhook endpoint that takes a fixed time per request
// and counts, per object key, events that arrive with a lower sequence
// (from webhook-id) than one already received.
type orderReceiver struct {
	srv   *http.Server
	addr  string
	delay time.Duration
	mu    sync.Mutex
	last  map[string]uint64
	bad   int
}

func startOrderReceiver(delay time.Duration) (*orderReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rv := &orderReceiver{addr: ln.Addr().String(), delay: delay, last: map[string]uint64{}}
	rv.srv = &http.Server{Handler: http.HandlerFunc(rv.serve), ReadHeaderTimeout: 5 * time.Second}
	go rv.srv.Serve(ln)
	return rv, nil
}

func (rv *orderReceiver) url() string { return "http://" + rv.addr + "/" }

func (rv *orderReceiver) close() { rv.srv.Close() }

func (rv *orderReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(rv.delay)
	var msg struct{ Key string }
	id := r.Header.Get("webhook-id")
	i := strings.LastIndexByte(id, '-')
	seq, serr := strconv.ParseUint(id[i+1:], 10, 64)
	if json.Unmarshal(body, &msg) != nil || serr != nil {
		http.Error(w, "no key or webhook-id", http.StatusBadRequest)
		return
	}
	// Keyed by the log's id too (webhook-id's prefix): each run has its
	// own log, whose sequences start at 1 again.
	k := id[:i+1] + msg.Key
	rv.mu.Lock()
	if seq < rv.last[k] {
		rv.bad++
	}
	rv.last[k] = max(rv.last[k], seq)
	rv.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (rv *orderReceiver) outOfOrder() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.bad
}
