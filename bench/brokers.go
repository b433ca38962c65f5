package main

// The harness of the broker scenarios (amqp, mqtt, nats, jetstream,
// nats-streaming, kafka): the relay's delivered rate with a backlog, the
// same library used directly, the drain of a prefilled backlog, and an
// outage of the broker with a consumer counting what arrived.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
	"github.com/bucketrelay/bucketrelay/wal"
)

// nkBatch is the engine's MaxBatch in these scenarios.
const nkBatch = 1000

// nkSpec describes one broker target to the harness.
type nkSpec struct {
	// newTarget returns the relay's target for the broker.
	newTarget func() (delivery.Target, error)
	// outageTarget, if set, returns the target of the outage phase
	// instead of newTarget (Kafka: another topic).
	outageTarget func() (delivery.Target, error)
	// direct sends bodies (cycling) with the broker's own client, at the
	// same acknowledgement level, for d, and returns the acknowledged rate.
	// Used when directWindow is nil.
	direct func(ctx context.Context, bodies [][]byte, keys []string, d time.Duration) (float64, error)
	// directWindow, if set, replaces direct for a client that sends in
	// batches of nkBatch with up to window batches unacknowledged at once.
	// The harness calls it with the relay's window (like for like: the
	// ratio rows) and, when that is above 1, with 1 (one batch at a
	// time, an extra row).
	directWindow func(ctx context.Context, bodies [][]byte, keys []string, window int, d time.Duration) (float64, error)
	// consume starts a consumer that hands every body to sink.
	consume func(sink consumers.Sink) (stop func(), err error)
	// stop and start take the broker down and bring it back.
	stop, start func() error
	// goal is the relay rate the issue asks for.
	goal string
	// atMostOnce: losses in the outage are expected (core NATS).
	atMostOnce bool
	notes      []string
	// inFlight is the target's delivery.Policy.InFlight (batches in
	// flight); 0 means one at a time. BENCH_INFLIGHT overrides it.
	inFlight int
}

// nkRun measures the relay rate, the direct client's rate and the outage
// drain.
func nkRun(ctx context.Context, o harness.Options, s nkSpec) (harness.Result, error) {
	var res harness.Result
	d := o.Duration
	if o.Quick {
		d = min(d, time.Second)
	}
	pool := harness.NewPool(4096)
	// With --cpuprofile, one profile per phase, so that the relay's CPU
	// per event can be set beside the direct client's.
	profile := func(phase string) func() {
		stop, err := harness.StartProfile(o, filepath.Base(o.Dir)+"-"+phase)
		if err != nil {
			return func() {}
		}
		return stop
	}
	stopProfile := profile("relay")
	rate, err := nkRelayRate(ctx, filepath.Join(o.Dir, "rate"), s, pool, d)
	stopProfile()
	if err != nil {
		return res, fmt.Errorf("relay rate: %w", err)
	}
	res.Add("relay delivered rate (wal → engine → target, backlog ≥ 20k, batches of 1000)", rate, "events/s", s.goal)
	window := max(1, benchInFlight(s.inFlight))
	directAt := func(window int) (float64, error) {
		if s.directWindow != nil {
			return s.directWindow(ctx, pool.Bodies, pool.Keys, window, d)
		}
		return s.direct(ctx, pool.Bodies, pool.Keys, d)
	}
	stopProfile = profile("direct")
	cpu0, t0 := harness.CPUTime(), time.Now()
	direct, err := directAt(window)
	directCPU := (harness.CPUTime() - cpu0).Seconds() / (direct * time.Since(t0).Seconds())
	stopProfile()
	if err != nil {
		return res, fmt.Errorf("direct client: %w", err)
	}
	if s.directWindow != nil {
		res.Add(fmt.Sprintf("direct client, same bodies, same acknowledgement, %d batch(es) in flight as the relay", window), direct, "events/s", "")
	} else {
		res.Add("direct client, same bodies, same acknowledgement", direct, "events/s", "")
	}
	res.Add("ratio relay / direct", rate/direct, "×", "≥ 0.8")
	if s.directWindow != nil && window > 1 {
		// The direct client one batch at a time, as it was measured before
		// the relay kept several batches in flight: the ratio to it shows
		// what the pipeline adds, not how the relay compares.
		single, err := directAt(1)
		if err != nil {
			return res, fmt.Errorf("direct client, one batch at a time: %w", err)
		}
		res.Add("direct client, one batch at a time", single, "events/s", "")
		res.Add("ratio relay / direct one batch at a time", rate/single, "×", "")
	}
	drain, drainCPU, err := nkDrainRate(ctx, filepath.Join(o.Dir, "drain"), s, pool, o.Quick, profile)
	if err != nil {
		return res, fmt.Errorf("relay drain rate: %w", err)
	}
	res.Add("relay drain rate of a prefilled backlog (no appends meanwhile)", drain, "events/s", s.goal)
	res.Add("ratio relay drain / direct", drain/direct, "×", "≥ 0.8")
	// CPU of this process (an out-of-process server's is not counted):
	// steadier than the rates on a shared machine.
	res.Add("process CPU per event, direct client", directCPU*1e6, "µs", "")
	res.Add("process CPU per event, relay drain", drainCPU*1e6, "µs", "")
	if err := nkOutage(ctx, &res, filepath.Join(o.Dir, "outage"), s, o); err != nil {
		return res, fmt.Errorf("outage: %w", err)
	}
	res.Notes = append(res.Notes, s.notes...)
	res.Notes = append(res.Notes, fmt.Sprintf("relay: %d batch(es) in flight (delivery.Policy.InFlight, the target's \"inflight\")", window))
	res.Notes = append(res.Notes, fmt.Sprintf("records of about %d bytes of JSON; relay rate over %v once the backlog passed 20,000", len(pool.Raws[0]), d))
	return res, nil
}

// nkOpen opens a pipeline (not running) into the target newTarget returns.
func nkOpen(dir string, newTarget func() (delivery.Target, error), inFlight int) (*harness.Pipeline, error) {
	tg, err := newTarget()
	if err != nil {
		return nil, err
	}
	p, err := harness.OpenPipeline(harness.PipelineConfig{Dir: dir, Target: tg, MaxBatch: nkBatch,
		Policy: delivery.Policy{InFlight: benchInFlight(inFlight)}})
	if err != nil {
		tg.Close()
		return nil, err
	}
	return p, nil
}

// nkRelayRate measures events delivered per second while two feeders keep
// a backlog of 20k-100k events.
func nkRelayRate(ctx context.Context, dir string, s nkSpec, pool harness.Pool, d time.Duration) (float64, error) {
	p, err := nkOpen(dir, s.newTarget, s.inFlight)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	var next atomic.Int64
	return p.BacklogRate(ctx, d, 60*time.Second, func() []*wal.Entry {
		es := make([]*wal.Entry, 1000)
		for i := range es {
			k := int(next.Add(1)-1) % len(pool.Raws)
			es[i] = &wal.Entry{Targets: []string{p.ID}, Key: pool.Keys[k], Name: string(event.ObjectCreatedPut), Data: pool.Raws[k]}
		}
		return es
	})
}

// nkDrainRate appends a backlog with the engine stopped, then runs it and
// measures the delivered rate between 10 % and 90 % of the backlog: the
// delivery path alone, without ingest competing for the CPU and the disk.
// It also returns the process's CPU seconds per event over that span, and
// profiles it (profile starts a CPU profile and returns its stop).
func nkDrainRate(ctx context.Context, dir string, s nkSpec, pool harness.Pool, quick bool, profile func(string) func()) (rate, cpu float64, err error) {
	total := 200_000
	if quick {
		total = 50_000
	}
	p, err := nkOpen(dir, s.newTarget, s.inFlight)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	for n := 0; n < total; n += 5000 {
		es := make([]*wal.Entry, 5000)
		for i := range es {
			k := (n + i) % len(pool.Raws)
			es[i] = &wal.Entry{Targets: []string{p.ID}, Key: pool.Keys[k], Name: string(event.ObjectCreatedPut), Data: pool.Raws[k]}
		}
		if err := p.Append(ctx, es...); err != nil {
			return 0, 0, err
		}
	}
	p.Run()
	if !harness.WaitFor(ctx, 5*time.Minute, func() bool { return p.Stats().Delivered >= uint64(total/10) }) {
		return 0, 0, fmt.Errorf("10%% of the backlog not delivered in 5 minutes (last error: %s)", p.Stats().LastError)
	}
	d0, t0, cpu0 := p.Stats().Delivered, time.Now(), harness.CPUTime()
	stopProfile := sync.OnceFunc(profile("drain"))
	defer stopProfile()
	if !harness.WaitFor(ctx, 5*time.Minute, func() bool { return p.Stats().Delivered >= uint64(total*9/10) }) {
		return 0, 0, fmt.Errorf("90%% of the backlog not delivered in 5 minutes (last error: %s)", p.Stats().LastError)
	}
	st, cpu1 := p.Stats(), harness.CPUTime()
	stopProfile()
	if st.Quarantined > 0 {
		return 0, 0, fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	n := float64(st.Delivered - d0)
	return n / time.Since(t0).Seconds(), (cpu1 - cpu0).Seconds() / n, nil
}

// nkOutage appends a steady 5,000 events/s, stops the broker for o.Outage,
// starts it, and measures the drain and what the consumer got.
func nkOutage(ctx context.Context, res *harness.Result, dir string, s nkSpec, o harness.Options) error {
	const offered = 5_000
	lead := 2 * time.Second
	if o.Quick {
		lead = time.Second
	}
	seen := &harness.IDSet{}
	stopConsumer, err := s.consume(seen.MarkBody)
	if err != nil {
		return err
	}
	defer func() { stopConsumer() }()
	newTarget := s.newTarget
	if s.outageTarget != nil {
		newTarget = s.outageTarget
	}
	p, err := nkOpen(dir, newTarget, s.inFlight)
	if err != nil {
		return err
	}
	p.Run()
	defer p.Close()
	var appended atomic.Int64
	var appendErr atomic.Pointer[error]
	actx, stopAppends := context.WithCancel(ctx)
	appending := make(chan struct{})
	go func() {
		defer close(appending)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for actx.Err() == nil {
			select {
			case <-tick.C:
			case <-actx.Done():
				return
			}
			due := int(time.Since(start).Seconds()*offered) - int(appended.Load())
			if due <= 0 {
				continue
			}
			base := int(appended.Load())
			es := make([]*wal.Entry, due)
			for i := range es {
				es[i] = targettest.Entry(harness.IDRecord(base+i), p.ID)
			}
			if err := p.Append(actx, es...); err != nil {
				if actx.Err() == nil {
					appendErr.Store(&err)
				}
				return
			}
			appended.Add(int64(due))
		}
	}()
	stopped := false
	defer func() {
		stopAppends()
		<-appending
		if stopped {
			s.start()
		}
	}()
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(lead); err != nil {
		return err
	}
	if err := s.stop(); err != nil {
		return err
	}
	stopped = true
	down := time.Now()
	if err := sleep(o.Outage); err != nil {
		return err
	}
	backlog := p.Stats().Pending
	if err := s.start(); err != nil {
		return err
	}
	stopped = false
	up := time.Now()
	d0 := p.Stats().Delivered
	if !harness.WaitFor(ctx, 10*time.Minute, func() bool { return p.Stats().Pending < offered/100 }) {
		return fmt.Errorf("backlog not drained within 10 minutes: %+v", p.Stats())
	}
	drain := time.Since(up)
	d1 := p.Stats().Delivered
	if err := sleep(time.Second); err != nil { // a little steady state after the drain
		return err
	}
	stopAppends()
	<-appending
	if e := appendErr.Load(); e != nil {
		return *e
	}
	total := int(appended.Load())
	if !harness.WaitFor(ctx, 2*time.Minute, func() bool { return p.Stats().Pending == 0 }) {
		return fmt.Errorf("backlog not drained after the appends stopped: %+v", p.Stats())
	}
	// Let the consumer catch up; stop waiting when it stops moving.
	last, lastMove := -1, time.Now()
	harness.WaitFor(ctx, time.Minute, func() bool {
		u, _ := seen.Counts()
		if u != last {
			last, lastMove = u, time.Now()
		}
		return u >= total || time.Since(lastMove) > 3*time.Second
	})
	_, dups := seen.Counts()
	lost := seen.Missing(total)
	goal := "0"
	if s.atMostOnce {
		goal = "0 not promised (at-most-once)"
	}
	res.Add("outage: server down", up.Sub(down).Seconds(), "s", "")
	res.Add("outage: steady appends", offered, "events/s", "")
	res.Add("outage: backlog when the server came back", float64(backlog), "events", "")
	res.Add("outage: drain time (server started → backlog < 50)", drain.Seconds(), "s", "")
	res.Add("outage: drain rate (delivered during the drain / drain time)", float64(d1-d0)/drain.Seconds(), "events/s", "")
	res.Add("outage: events appended in all", float64(total), "events", "")
	res.Add("outage: lost (never seen by the consumer)", float64(lost), "events", goal)
	res.Add("outage: duplicates", float64(dups), "events", "")
	if st := p.Stats(); st.Quarantined > 0 {
		return fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return nil
}

// benchInFlight returns BENCH_INFLIGHT if set (to compare one batch at a
// time with a pipeline in the same tree), else def.
func benchInFlight(def int) int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_INFLIGHT")); err == nil && v > 0 {
		return v
	}
	return def
}
