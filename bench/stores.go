package main

// The harness of the store scenarios (redis, postgresql, mysql,
// elasticsearch): for each format, the relay's delivered rate beside a
// direct client of the same library, then an outage of the server.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

// storeBench is the scenario code shared by the store targets: for each
// format, the delivered rate beside a direct client, then the outage.
type storeBench struct {
	name string
	// client names the direct client's library and how it sends a batch,
	// for the notes.
	client string
	// rateGoal returns the goal of the relay rate given the direct rate.
	rateGoal func(direct float64) string
	// newTarget returns the adapter for a format (ns: namespace).
	newTarget func(ns bool) (delivery.Target, error)
	// reset empties the format's key or table.
	reset func(ns bool) error
	// direct returns a client of the same library writing a batch as one
	// transaction, the way the adapter does, and its closer.
	direct func(ns bool) (func(context.Context, []delivery.Item) error, func(), error)
	// stop and start stop and start the server.
	stop, start func() error
	// ids reads back the request ids stored: per key (namespace) or in
	// order (access).
	ids func(ns bool) (map[string]uint64, []uint64, error)
	// inFlight is the target's delivery.Policy.InFlight; 0 means one
	// batch at a time. BENCH_INFLIGHT overrides it. The direct client
	// sends on as many connections at once, each a batch at a time, so
	// that the ratio compares like with like (see directRate).
	inFlight int
}

const (
	storeBatch      = 1000    // items per Send (the engine's default MaxBatch)
	storeRateKeys   = 200_000 // distinct keys of the rate runs
	storeOutageKeys = 10_000  // distinct keys of the outage backlog
)

func (sb *storeBench) run(ctx context.Context, o harness.Options) (harness.Result, error) {
	var res harness.Result
	d := o.Duration
	if o.Quick {
		d = min(d, 2*time.Second)
	}
	window := max(1, benchInFlight(sb.inFlight))
	for _, ns := range []bool{true, false} {
		f := "access"
		if ns {
			f = "namespace"
		}
		if err := sb.reset(ns); err != nil {
			return res, err
		}
		stopProfile, err := harness.StartProfile(o, o.Scenario+"-"+f+"-relay")
		if err != nil {
			return res, err
		}
		rate, err := sb.relayRate(ctx, filepath.Join(o.Dir, f+"-rate"), ns, d)
		stopProfile()
		if err != nil {
			return res, fmt.Errorf("%s relay rate: %w", f, err)
		}
		if err := sb.reset(ns); err != nil {
			return res, err
		}
		if stopProfile, err = harness.StartProfile(o, o.Scenario+"-"+f+"-direct"); err != nil {
			return res, err
		}
		direct, err := sb.directRate(ctx, ns, window, d)
		stopProfile()
		if err != nil {
			return res, fmt.Errorf("%s direct rate: %w", f, err)
		}
		// The direct client one batch at a time, as it was measured before
		// the relay kept several batches in flight: the ratio to it shows
		// what the pipeline adds, not how the relay compares.
		single := direct
		if window > 1 {
			if err := sb.reset(ns); err != nil {
				return res, err
			}
			if single, err = sb.directRate(ctx, ns, 1, d); err != nil {
				return res, fmt.Errorf("%s direct rate, one batch at a time: %w", f, err)
			}
		}
		res.Add(f+": relay delivered (log + engine + target)", rate, "events/s", sb.rateGoal(direct))
		res.Add(f+": direct client, same batches, as many in flight as the relay", direct, "events/s", "")
		res.Add(f+": ratio relay / direct", rate/direct, "×", "")
		if window > 1 {
			res.Add(f+": direct client, one batch at a time", single, "events/s", "")
			res.Add(f+": ratio relay / direct one batch at a time", rate/single, "×", "")
		}
		if err := sb.reset(ns); err != nil {
			return res, err
		}
		if err := sb.outage(ctx, &res, filepath.Join(o.Dir, f+"-outage"), ns, f, o); err != nil {
			return res, fmt.Errorf("%s outage: %w", f, err)
		}
		if err := sb.reset(ns); err != nil {
			return res, err
		}
	}
	res.Notes = append(res.Notes,
		fmt.Sprintf("records: ~%d B of JSON each (bench record); batches of %d items; rate runs over %d distinct keys cycled, so a coalescing window (≤ %d keys) never coalesces an event away", harness.RecordSize(), storeBatch, storeRateKeys, delivery.DefaultCoalesceKeys),
		"rate: 2 feeders keep 20k-100k events pending in the log (fsync on) while the engine drains; events/s delivered over the measured time",
		fmt.Sprintf("relay: %d batch(es) in flight (delivery.Policy.InFlight, the target's \"inflight\")", window),
		fmt.Sprintf("direct: %s on %d connection(s) at once (as many as the relay has batches in flight), each sending the same records in the same batches, its next batch when the previous one was answered; batches in flight together never share a key; the ratio is relay / this client", sb.client, window),
		"direct, one batch at a time: one connection of the same client, a batch at a time (the earlier comparison; shown when the relay has more than one batch in flight)",
		"outage: the server is stopped, the events are appended in calls of 1,000, the server is started when the outage time has passed; engine MaxBackoff 1 s",
		"outage writes: items of the sends the store acknowledged after the restart (a failed send writes nothing: it is one transaction)")
	return res, nil
}

// benchTemplate is a bench record whose x-amz-request-id is patched per
// event: the id read back tells which event a stored value came from.
var benchTemplate, benchIDAt = func() ([]byte, int) {
	r := harness.Record(0)
	r.ResponseElements = map[string]string{"x-amz-request-id": "0000000000000000", "x-minio-origin-endpoint": "http://127.0.0.1:9000"}
	b, _ := json.Marshal(r)
	return b, bytes.Index(b, []byte(`"x-amz-request-id":"`)) + len(`"x-amz-request-id":"`)
}()

// storeEntry returns the log entry of event id for key k, routed to target.
func storeEntry(id uint64, k int, target string) *wal.Entry {
	data := bytes.Clone(benchTemplate)
	copy(data[benchIDAt:], fmt.Sprintf("%016X", id))
	return &wal.Entry{Targets: []string{target}, Key: fmt.Sprintf("%s/photos/IMG_%08d.jpg", harness.Bucket, k),
		Name: string(event.ObjectCreatedPut), EventTime: time.Date(2026, 11, 25, 12, 0, 0, int(id), time.UTC), Data: data}
}

// rows is what database/sql's and pgx's result sets have in common.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanLatest reads rows of (key, request id in hex): the namespace
// format's newest value per key.
func scanLatest(r rows) (map[string]uint64, error) {
	out := map[string]uint64{}
	for r.Next() {
		var k, v string
		if err := r.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k], _ = strconv.ParseUint(v, 16, 64)
	}
	return out, r.Err()
}

// scanOrdered reads rows of (request id in hex): the access format's
// rows in insertion order.
func scanOrdered(r rows) ([]uint64, error) {
	var ids []uint64
	for r.Next() {
		var v string
		if err := r.Scan(&v); err != nil {
			return nil, err
		}
		id, _ := strconv.ParseUint(v, 16, 64)
		ids = append(ids, id)
	}
	return ids, r.Err()
}

// requestID reads the x-amz-request-id of a stored value.
func requestID(b []byte) (uint64, bool) {
	i := bytes.Index(b, []byte(`"x-amz-request-id":`))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(`"x-amz-request-id":`):]
	b = bytes.TrimLeft(b, ` "`)
	if len(b) < 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[:16]), 16, 64)
	return v, err == nil
}

// countingTarget records the keys of the items the store acknowledged.
type countingTarget struct {
	delivery.Target
	mu   sync.Mutex
	keys []string
}

func (c *countingTarget) Send(ctx context.Context, items []delivery.Item) error {
	err := c.Target.Send(ctx, items)
	if err == nil {
		c.mu.Lock()
		for i := range items {
			c.keys = append(c.keys, items[i].Key)
		}
		c.mu.Unlock()
	}
	return err
}

// take returns the number of items acknowledged since the last call and
// the number of distinct keys among them.
func (c *countingTarget) take() (writes, keys int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(c.keys))
	for _, k := range c.keys {
		seen[k] = true
	}
	writes = len(c.keys)
	c.keys = nil
	return writes, len(seen)
}

// openStorePipeline opens a Pipeline for a store target and runs it.
func openStorePipeline(dir string, tg delivery.Target, ns bool, inFlight int) (*harness.Pipeline, error) {
	p, err := harness.OpenPipeline(harness.PipelineConfig{Dir: dir, Target: tg, ID: "arn:minio:sqs::bench:store", Namespace: ns, MaxBatch: storeBatch, MaxBackoff: time.Second,
		Policy: delivery.Policy{InFlight: benchInFlight(inFlight)}})
	if err != nil {
		return nil, err
	}
	p.Run()
	return p, nil
}

// relayRate measures events delivered per second while feeders keep a
// backlog of 20k-100k events.
func (sb *storeBench) relayRate(ctx context.Context, dir string, ns bool, d time.Duration) (float64, error) {
	tg, err := sb.newTarget(ns)
	if err != nil {
		return 0, err
	}
	p, err := openStorePipeline(dir, tg, ns, sb.inFlight)
	if err != nil {
		tg.Close()
		return 0, err
	}
	defer p.Close()
	var next atomic.Uint64
	return p.BacklogRate(ctx, d, 30*time.Second, func() []*wal.Entry {
		es := make([]*wal.Entry, 500)
		for i := range es {
			id := next.Add(1) - 1
			es[i] = storeEntry(id, int(id%storeRateKeys), p.ID)
		}
		return es
	})
}

// directRate sends batches of the same records with the direct client in a
// closed loop for d: on conns connections at once (at least one), each
// sending its next batch when its previous one was answered, batches on
// different connections never sharing a key (as the relay's batches in
// flight).
func (sb *storeBench) directRate(ctx context.Context, ns bool, conns int, d time.Duration) (float64, error) {
	// The connections are opened before the clock starts, as the
	// relay's target has connected before its rate is measured.
	sends := make([]func(context.Context, []delivery.Item) error, max(1, conns))
	for i := range sends {
		send, closeFn, err := sb.direct(ns)
		if err != nil {
			return 0, err
		}
		defer closeFn()
		sends[i] = send
	}
	var batches atomic.Uint64 // batch b holds the ids b*storeBatch…
	errs := make(chan error, len(sends))
	start := time.Now()
	for _, send := range sends {
		go func() {
			items := make([]delivery.Item, storeBatch)
			for time.Since(start) < d && ctx.Err() == nil {
				n := (batches.Add(1) - 1) * storeBatch
				for i := range items {
					e := storeEntry(n, int(n%storeRateKeys), "x")
					items[i] = delivery.Item{Seq: n + 1, Key: e.Key, EventName: event.Name(e.Name), EventTime: e.EventTime, Record: e.Data}
					n++
				}
				if err := send(ctx, items); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range sends {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return 0, first
	}
	return float64(batches.Load()*storeBatch) / time.Since(start).Seconds(), nil
}

// outage stops the server, appends the backlog, starts the server when
// o.Outage has passed, and measures the drain.
func (sb *storeBench) outage(ctx context.Context, res *harness.Result, dir string, ns bool, f string, o harness.Options) error {
	total := 1_000_000
	if o.Quick {
		total = 100_000
	}
	tg, err := sb.newTarget(ns)
	if err != nil {
		return err
	}
	ct := &countingTarget{Target: tg}
	p, err := openStorePipeline(dir, ct, ns, sb.inFlight)
	if err != nil {
		return err
	}
	defer p.Close()
	if err := sb.stop(); err != nil {
		return err
	}
	started := false
	defer func() {
		if !started {
			sb.start()
		}
	}()
	down := time.Now()
	want := make(map[string]uint64, storeOutageKeys)
	for id := 0; id < total; id += 1000 {
		es := make([]*wal.Entry, min(1000, total-id))
		for i := range es {
			es[i] = storeEntry(uint64(id+i), (id+i)%storeOutageKeys, p.ID)
			want[es[i].Key] = uint64(id + i)
		}
		if err := p.Append(ctx, es...); err != nil {
			return err
		}
	}
	appended := time.Since(down)
	if rest := o.Outage - appended; rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ct.take() // nothing is acknowledged while the server is down
	backlog := p.Stats().Pending
	up := time.Now()
	downFor := up.Sub(down)
	if err := sb.start(); err != nil {
		return err
	}
	started = true
	startup := time.Since(up)
	if !harness.WaitFor(ctx, 10*time.Minute, func() bool { return p.Stats().Pending == 0 }) {
		return fmt.Errorf("backlog not drained within 10 minutes: %+v", p.Stats())
	}
	drain := time.Since(up)
	writes, written := ct.take()
	res.Add(f+" outage: events appended while the server was down", float64(total), "events", "")
	res.Add(f+" outage: distinct keys", float64(len(want)), "keys", "")
	res.Add(f+" outage: server down", downFor.Seconds(), "s", "")
	res.Add(f+" outage: backlog when the server came back", float64(backlog), "events", "")
	res.Add(f+" outage: server start command took (services.sh start)", startup.Seconds(), "s", "")
	res.Add(f+" outage: drain time (start command → backlog 0, start-up included)", drain.Seconds(), "s", "")
	res.Add(f+" outage: writes sent after the restart (items acknowledged)", float64(writes), "writes", "")
	if ns {
		res.Add(f+" outage: writes per distinct key", float64(writes)/float64(len(want)), "writes/key", "≤ 1")
		res.Add(f+" outage: keys written more than once", float64(writes-written), "writes", "0")
	}
	// Lost: a key whose stored value is not its newest event, or an event
	// missing from the access list/table.
	byKey, seq, err := sb.ids(ns)
	if err != nil {
		return err
	}
	lost, dups := 0, 0
	if ns {
		for k, id := range want {
			if got, ok := byKey[k]; !ok || got != id {
				lost++
			}
		}
	} else {
		seen := make([]uint8, total)
		for _, id := range seq {
			if id < uint64(total) {
				if seen[id] > 0 {
					dups++
				}
				seen[id] = 1
			}
		}
		for _, s := range seen {
			if s == 0 {
				lost++
			}
		}
	}
	res.Add(f+" outage: lost", float64(lost), "events", "0")
	if !ns {
		res.Add(f+" outage: duplicates", float64(dups), "events", "")
	}
	if st := p.Stats(); st.Quarantined > 0 {
		return fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return nil
}
