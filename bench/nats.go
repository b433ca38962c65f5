package main

// Scenarios "nats", "jetstream" and "nats-streaming": the NATS target in
// each of its modes, beside a direct nats.go / stan.go client, and the drain
// after the server was down. The harness (nkSpec, nkRun) is shared with
// bench/kafka.go.
//
// nats and jetstream start their own nats-server process (the binary
// scripts/services.sh installs) on a private port with its own JetStream
// store, and stop and start it for the outage, so that they neither depend
// on nor disturb the shared server on 4222; nats-streaming runs an embedded
// NATS Streaming server with a file store.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	stand "github.com/nats-io/nats-streaming-server/server"
	"github.com/nats-io/nats-streaming-server/stores"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"

	natsadapter "github.com/bucketrelay/bucketrelay/adapters/nats"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/delivery/targettest"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/wal"
)

func init() {
	register("nats", runNATSCore)
	register("jetstream", runJetStream)
	register("nats-streaming", runNATSStreaming)
}

// ---- shared harness (NATS and Kafka) ----

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
	direct func(ctx context.Context, bodies [][]byte, keys []string, d time.Duration) (float64, error)
	// consume starts a consumer that reports every body to seen.
	consume func(seen *nkSeen) (stop func(), err error)
	// stop and start take the broker down and bring it back.
	stop, start func() error
	// goal is the relay rate the issue asks for.
	goal string
	// atMostOnce: losses in the outage are expected (core NATS).
	atMostOnce bool
	notes      []string
}

// nkRecord returns a record of about 1 KiB of JSON carrying id.
func nkRecord(id int) event.Record {
	r := targettest.Record("images", fmt.Sprintf("photos/2026/11/25/IMG_%08d.jpg", id), event.ObjectCreatedPut, id)
	r.RequestParameters = map[string]string{"sourceIPAddress": "127.0.0.1:38062", "nkID": strconv.Itoa(id)}
	r.S3.Object.UserMetadata = map[string]string{
		"X-Amz-Meta-Camera":   "NIKON D850 / AF-S NIKKOR 24-70mm f/2.8E ED VR",
		"X-Amz-Meta-Uploader": "ingest-pipeline-07.eu-west.example.internal",
		"X-Amz-Meta-Checksum": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	}
	return r
}

// nkID finds the id nkRecord put in a body.
func nkID(b []byte) (int, bool) {
	const key = `"nkID":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return 0, false
	}
	v, err := strconv.Atoi(string(b[:j]))
	return v, err == nil
}

// nkSeen counts what a consumer received, per id.
type nkSeen struct{ idSet }

func (s *nkSeen) add(body []byte) {
	if id, ok := nkID(body); ok {
		s.mark(id)
	}
}

// nkPipeline is a log and an engine draining it into one target.
type nkPipeline struct {
	log     *wal.Log
	eng     *delivery.Engine
	id      string
	cancel  context.CancelFunc
	done    chan struct{}
	running bool
}

func nkOpen(dir string, tg delivery.Target) (*nkPipeline, error) {
	p, err := nkOpenIdle(dir, tg)
	if err != nil {
		return nil, err
	}
	p.run()
	return p, nil
}

// nkOpenIdle opens the log and the engine without running the engine.
func nkOpenIdle(dir string, tg delivery.Target) (*nkPipeline, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := wal.Open(filepath.Join(dir, "wal.db"), wal.Options{Logger: nkQuiet()})
	if err != nil {
		return nil, err
	}
	p := &nkPipeline{log: l, id: "arn:minio:sqs::bench:queue", done: make(chan struct{})}
	p.eng = delivery.New(l, delivery.Options{MaxBackoff: time.Second, Logger: nkQuiet()})
	if err := p.eng.Add(delivery.Spec{ID: p.id, Target: tg, MaxBatch: nkBatch}); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

// run starts the engine.
func (p *nkPipeline) run() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.running = cancel, true
	go func() { p.eng.Run(ctx); close(p.done) }()
}

func (p *nkPipeline) append(ctx context.Context, es []*wal.Entry) error {
	if _, err := p.log.Append(ctx, es...); err != nil {
		return err
	}
	return nil
}

func (p *nkPipeline) stats() delivery.Stats { return p.eng.Stats()[0] }

func (p *nkPipeline) close() {
	if p.running {
		p.cancel()
		<-p.done
	}
	p.log.Close()
}

// nkPool is the records of the rate measurements: raw JSON, keys, bodies.
type nkPool struct {
	raws   [][]byte
	keys   []string
	bodies [][]byte
}

func newNKPool(n int) nkPool {
	var p nkPool
	for i := range n {
		e := targettest.Entry(nkRecord(i), "x")
		it := delivery.Item{Key: e.Key, EventName: event.Name(e.Name), Record: e.Data}
		p.raws = append(p.raws, e.Data)
		p.keys = append(p.keys, e.Key)
		p.bodies = append(p.bodies, it.Message())
	}
	return p
}

// nkRun measures the relay rate, the direct client's rate and the outage
// drain.
func nkRun(ctx context.Context, o Options, s nkSpec) (Result, error) {
	var res Result
	d := o.Duration
	if o.Quick {
		d = min(d, time.Second)
	}
	pool := newNKPool(4096)
	rate, err := nkRelayRate(ctx, filepath.Join(o.Dir, "rate"), s, pool, d)
	if err != nil {
		return res, fmt.Errorf("relay rate: %w", err)
	}
	res.Add("relay delivered rate (wal → engine → target, backlog ≥ 20k, batches of 1000)", rate, "events/s", s.goal)
	direct, err := s.direct(ctx, pool.bodies, pool.keys, d)
	if err != nil {
		return res, fmt.Errorf("direct client: %w", err)
	}
	res.Add("direct client, same bodies, same acknowledgement", direct, "events/s", "")
	res.Add("ratio relay / direct", rate/direct, "×", "≥ 0.8")
	drain, err := nkDrainRate(ctx, filepath.Join(o.Dir, "drain"), s, pool, o.Quick)
	if err != nil {
		return res, fmt.Errorf("relay drain rate: %w", err)
	}
	res.Add("relay drain rate of a prefilled backlog (no appends meanwhile)", drain, "events/s", s.goal)
	res.Add("ratio relay drain / direct", drain/direct, "×", "≥ 0.8")
	if err := nkOutage(ctx, &res, filepath.Join(o.Dir, "outage"), s, o); err != nil {
		return res, fmt.Errorf("outage: %w", err)
	}
	res.Notes = append(res.Notes, s.notes...)
	res.Notes = append(res.Notes, fmt.Sprintf("records of about %d bytes of JSON; relay rate over %v once the backlog passed 20,000", len(pool.raws[0]), d))
	return res, nil
}

// nkRelayRate measures events delivered per second while two feeders keep
// a backlog of 20k-100k events.
func nkRelayRate(ctx context.Context, dir string, s nkSpec, pool nkPool, d time.Duration) (float64, error) {
	tg, err := s.newTarget()
	if err != nil {
		return 0, err
	}
	p, err := nkOpen(dir, tg)
	if err != nil {
		return 0, err
	}
	defer p.close()
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var feedErr atomic.Pointer[error]
	var next atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				if p.stats().Pending > 100_000 {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				es := make([]*wal.Entry, 1000)
				for i := range es {
					k := int(next.Add(1)-1) % len(pool.raws)
					es[i] = &wal.Entry{Targets: []string{p.id}, Key: pool.keys[k], Name: string(event.ObjectCreatedPut), Data: pool.raws[k]}
				}
				if err := p.append(fctx, es); err != nil && fctx.Err() == nil {
					feedErr.Store(&err)
					return
				}
			}
		}()
	}
	defer func() { stopFeed(); wg.Wait() }()
	if !waitFor(ctx, 60*time.Second, func() bool { return p.stats().Pending > 20_000 }) {
		return 0, fmt.Errorf("backlog never reached 20,000 (last error: %s)", p.stats().LastError)
	}
	s0, t0 := p.stats().Delivered, time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	st, t1 := p.stats(), time.Now()
	if e := feedErr.Load(); e != nil {
		return 0, *e
	}
	if st.Quarantined > 0 {
		return 0, fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return float64(st.Delivered-s0) / t1.Sub(t0).Seconds(), nil
}

// nkDrainRate appends a backlog with the engine stopped, then runs it and
// measures the delivered rate between 10 % and 90 % of the backlog: the
// delivery path alone, without ingest competing for the CPU and the disk.
func nkDrainRate(ctx context.Context, dir string, s nkSpec, pool nkPool, quick bool) (float64, error) {
	total := 200_000
	if quick {
		total = 50_000
	}
	tg, err := s.newTarget()
	if err != nil {
		return 0, err
	}
	p, err := nkOpenIdle(dir, tg)
	if err != nil {
		tg.Close()
		return 0, err
	}
	defer p.close()
	for n := 0; n < total; n += 5000 {
		es := make([]*wal.Entry, 5000)
		for i := range es {
			k := (n + i) % len(pool.raws)
			es[i] = &wal.Entry{Targets: []string{p.id}, Key: pool.keys[k], Name: string(event.ObjectCreatedPut), Data: pool.raws[k]}
		}
		if err := p.append(ctx, es); err != nil {
			return 0, err
		}
	}
	p.run()
	if !waitFor(ctx, 5*time.Minute, func() bool { return p.stats().Delivered >= uint64(total/10) }) {
		return 0, fmt.Errorf("10%% of the backlog not delivered in 5 minutes (last error: %s)", p.stats().LastError)
	}
	d0, t0 := p.stats().Delivered, time.Now()
	if !waitFor(ctx, 5*time.Minute, func() bool { return p.stats().Delivered >= uint64(total*9/10) }) {
		return 0, fmt.Errorf("90%% of the backlog not delivered in 5 minutes (last error: %s)", p.stats().LastError)
	}
	st := p.stats()
	if st.Quarantined > 0 {
		return 0, fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return float64(st.Delivered-d0) / time.Since(t0).Seconds(), nil
}

// nkOutage appends a steady 5,000 events/s, stops the broker for o.Outage,
// starts it, and measures the drain and what the consumer got.
func nkOutage(ctx context.Context, res *Result, dir string, s nkSpec, o Options) error {
	const offered = 5_000
	lead := 2 * time.Second
	if o.Quick {
		lead = time.Second
	}
	seen := &nkSeen{}
	stopConsumer, err := s.consume(seen)
	if err != nil {
		return err
	}
	defer func() { stopConsumer() }()
	newTarget := s.newTarget
	if s.outageTarget != nil {
		newTarget = s.outageTarget
	}
	tg, err := newTarget()
	if err != nil {
		return err
	}
	p, err := nkOpen(dir, tg)
	if err != nil {
		return err
	}
	defer p.close()
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
				es[i] = targettest.Entry(nkRecord(base+i), p.id)
			}
			if err := p.append(actx, es); err != nil {
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
	backlog := p.stats().Pending
	if err := s.start(); err != nil {
		return err
	}
	stopped = false
	up := time.Now()
	d0 := p.stats().Delivered
	if !waitFor(ctx, 10*time.Minute, func() bool { return p.stats().Pending < offered/100 }) {
		return fmt.Errorf("backlog not drained within 10 minutes: %+v", p.stats())
	}
	drain := time.Since(up)
	d1 := p.stats().Delivered
	if err := sleep(time.Second); err != nil { // a little steady state after the drain
		return err
	}
	stopAppends()
	<-appending
	if e := appendErr.Load(); e != nil {
		return *e
	}
	total := int(appended.Load())
	if !waitFor(ctx, 2*time.Minute, func() bool { return p.stats().Pending == 0 }) {
		return fmt.Errorf("backlog not drained after the appends stopped: %+v", p.stats())
	}
	// Let the consumer catch up; stop waiting when it stops moving.
	last, lastMove := -1, time.Now()
	waitFor(ctx, time.Minute, func() bool {
		u, _ := seen.counts()
		if u != last {
			last, lastMove = u, time.Now()
		}
		return u >= total || time.Since(lastMove) > 3*time.Second
	})
	_, dups := seen.counts()
	lost := seen.missing(total)
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
	if st := p.stats(); st.Quarantined > 0 {
		return fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return nil
}

// nkQuiet is quietLogger (errors only), under the name other scenarios
// call it by.
func nkQuiet() *slog.Logger { return quietLogger() }

// ---- NATS ----

// benchNATS is a nats-server process (the real binary, JetStream on, its
// own store) on a private loopback port, so that the scenario neither
// depends on nor disturbs the server of scripts/services.sh. The binary is
// run through a symlink of another name, so that services.sh, which finds
// its server with pgrep/pkill -x nats-server, does not see this one.
type benchNATS struct {
	port int
	dir  string
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
}

func newBenchNATS(dir string) (*benchNATS, error) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		return nil, fmt.Errorf("nats-server binary not found (scripts/services.sh install): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	link := filepath.Join(dir, "bench-natsd")
	if err := os.Symlink(bin, link); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &benchNATS{port: l.Addr().(*net.TCPAddr).Port, dir: filepath.Join(dir, "store"), bin: link}
	l.Close()
	return b, b.start()
}

func (b *benchNATS) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *benchNATS) start() error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.cmd = exec.Command(b.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(b.port), "-js", "-sd", b.dir)
	if err := b.cmd.Start(); err != nil {
		return err
	}
	b.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(b.cmd, b.done)
	for range 200 {
		if c, err := net.DialTimeout("tcp", b.addr(), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("nats-server did not open %s", b.addr())
}

// stop shuts the server down (SIGTERM: a clean shutdown, which syncs the
// JetStream store) and waits for it to exit.
func (b *benchNATS) stop() error {
	if b.cmd == nil {
		return nil
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(20 * time.Second):
		b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
	return nil
}

func newNATSTarget(cfg natsadapter.Config) func() (delivery.Target, error) {
	return func() (delivery.Target, error) {
		t, err := natsadapter.New(cfg, nkQuiet())
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

func runNATSCore(ctx context.Context, o Options) (Result, error) {
	srv, err := newBenchNATS(filepath.Join(o.Dir, "nats"))
	if err != nil {
		return Result{}, err
	}
	defer srv.stop()
	addr := srv.addr()
	subject := "bucketevents.bench.core"
	return nkRun(ctx, o, nkSpec{
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: addr, Subject: subject}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			nc, err := natsgo.Connect("nats://" + addr)
			if err != nil {
				return 0, err
			}
			defer nc.Close()
			n, start := 0, time.Now()
			for time.Since(start) < d && ctx.Err() == nil {
				for range nkBatch {
					if err := nc.Publish(subject, bodies[n%len(bodies)]); err != nil {
						return 0, err
					}
					n++
				}
				if err := nc.FlushTimeout(10 * time.Second); err != nil {
					return 0, err
				}
			}
			return float64(n) / time.Since(start).Seconds(), nil
		},
		consume: func(seen *nkSeen) (func(), error) {
			nc, err := natsgo.Connect("nats://"+addr, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(100*time.Millisecond))
			if err != nil {
				return nil, err
			}
			sub, err := nc.Subscribe(subject, func(m *natsgo.Msg) { seen.add(m.Data) })
			if err != nil {
				nc.Close()
				return nil, err
			}
			sub.SetPendingLimits(-1, -1)
			return nc.Close, nc.Flush()
		},
		stop: srv.stop, start: srv.start,
		goal: "≥ 50000", atMostOnce: true,
		notes: []string{
			natsServerVersion() + " (the binary, own process and store, private loopback port); target publishes each batch and flushes (core NATS, at-most-once); direct client: nats.go Publish × 1000 then Flush",
			"outage: core NATS keeps nothing: what the relay publishes before the consumer has resubscribed is lost by design",
		},
	})
}

func natsServerVersion() string {
	out, err := exec.Command("nats-server", "--version").Output()
	if err != nil {
		return "(version unknown)"
	}
	return string(bytes.TrimSpace(out))
}

func runJetStream(ctx context.Context, o Options) (Result, error) {
	srv, err := newBenchNATS(filepath.Join(o.Dir, "nats"))
	if err != nil {
		return Result{}, err
	}
	defer srv.stop()
	addr := srv.addr()
	subject := "bucketevents.bench.js"
	const stream = "RELAYBENCH"
	// (Re)create the stream; it is deleted at the end.
	setup := func() (jetstream.JetStream, *natsgo.Conn, error) {
		nc, err := natsgo.Connect("nats://" + addr)
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return js, nc, nil
	}
	js, nc, err := setup()
	if err != nil {
		return Result{}, err
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(cctx, stream)
	if _, err := js.CreateStream(cctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		return Result{}, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if js, nc, err := setup(); err == nil {
			_ = js.DeleteStream(ctx, stream)
			nc.Close()
		}
	}()
	return nkRun(ctx, o, nkSpec{
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: addr, Subject: subject, JetStream: natsadapter.JetStreamConfig{Enable: true}}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			var failed atomic.Int64
			djs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(natsadapter.DefaultMaxPending),
				jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *natsgo.Msg, error) { failed.Add(1) }))
			if err != nil {
				return 0, err
			}
			n, start := 0, time.Now()
			for time.Since(start) < d && ctx.Err() == nil {
				if _, err := djs.PublishAsync(subject, bodies[n%len(bodies)]); err != nil {
					return 0, err
				}
				n++
			}
			select {
			case <-djs.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				return 0, errors.New("PubAcks did not complete")
			}
			if f := failed.Load(); f > 0 {
				return 0, fmt.Errorf("%d of %d direct publishes failed", f, n)
			}
			return float64(n) / time.Since(start).Seconds(), nil
		},
		consume: func(seen *nkSeen) (func(), error) {
			cnc, err := natsgo.Connect("nats://"+addr, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(100*time.Millisecond))
			if err != nil {
				return nil, err
			}
			cjs, err := jetstream.New(cnc)
			if err != nil {
				cnc.Close()
				return nil, err
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			info, err := cjs.Stream(cctx, stream)
			if err != nil {
				cnc.Close()
				return nil, err
			}
			// Only what the outage phase publishes: start after the rate
			// phase's messages.
			first := info.CachedInfo().State.LastSeq + 1
			cons, err := cjs.OrderedConsumer(cctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first})
			if err != nil {
				cnc.Close()
				return nil, err
			}
			cc, err := cons.Consume(func(m jetstream.Msg) { seen.add(m.Data()) })
			if err != nil {
				cnc.Close()
				return nil, err
			}
			return func() { cc.Stop(); cnc.Close() }, nil
		},
		stop: srv.stop, start: srv.start,
		goal: "≥ 20000",
		notes: []string{
			natsServerVersion() + " (the binary, own process and store, private loopback port), file-stored stream; target: PublishAsync for the batch, then wait for every PubAck; direct client: jetstream PublishAsync in a continuous pipeline of up to 4096 unacknowledged",
		},
	})
}

// benchStan is an embedded NATS Streaming server with a file store.
type benchStan struct {
	port int
	dir  string
	srv  *stand.StanServer
}

func (b *benchStan) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *benchStan) start() error {
	sopts := stand.GetDefaultOptions()
	sopts.ID = "bench-cluster"
	sopts.StoreType = stores.TypeFile
	sopts.FilestoreDir = b.dir
	sopts.MaxMsgs = 0
	sopts.MaxBytes = 0
	sopts.MaxChannels = 10
	nopts := stand.DefaultNatsServerOptions
	nopts.Port = b.port
	var err error
	for range 50 {
		if b.srv, err = stand.RunServerWithOpts(sopts, &nopts); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (b *benchStan) stop() error {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv = nil
	}
	return nil
}

func runNATSStreaming(ctx context.Context, o Options) (Result, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &benchStan{port: l.Addr().(*net.TCPAddr).Port, dir: filepath.Join(o.Dir, "stan")}
	l.Close()
	if err := srv.start(); err != nil {
		return Result{}, err
	}
	defer srv.stop()
	const subject = "bucketevents"
	const inflight = 1024
	var sub struct {
		mu sync.Mutex
		sc stan.Conn
	}
	var subSeen *nkSeen
	subscribe := func() error {
		sc, err := stan.Connect("bench-cluster", "bench-consumer", stan.NatsURL("nats://"+srv.addr()))
		if err != nil {
			return err
		}
		seen := subSeen
		if _, err := sc.Subscribe(subject, func(m *stan.Msg) { seen.add(m.Data) },
			stan.DurableName("bench"), stan.MaxInflight(8192)); err != nil {
			sc.Close()
			return err
		}
		sub.mu.Lock()
		sub.sc = sc
		sub.mu.Unlock()
		return nil
	}
	unsubscribe := func() {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if sub.sc != nil {
			sub.sc.Close() // keeps the durable subscription
			sub.sc = nil
		}
	}
	return nkRun(ctx, o, nkSpec{
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: srv.addr(), Subject: subject,
			Streaming: natsadapter.StreamingConfig{Enable: true, ClusterID: "bench-cluster", ClientID: "bench-relay", Async: true, MaxPubAcksInflight: inflight}}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			sc, err := stan.Connect("bench-cluster", "bench-direct", stan.NatsURL("nats://"+srv.addr()), stan.MaxPubAcksInflight(inflight))
			if err != nil {
				return 0, err
			}
			defer sc.Close()
			var acked, failed atomic.Int64
			n, start := 0, time.Now()
			for time.Since(start) < d && ctx.Err() == nil {
				if _, err := sc.PublishAsync(subject, bodies[n%len(bodies)], func(_ string, err error) {
					if err != nil {
						failed.Add(1)
					}
					acked.Add(1)
				}); err != nil {
					return 0, err
				}
				n++
			}
			for acked.Load() < int64(n) && time.Since(start) < d+30*time.Second {
				time.Sleep(time.Millisecond)
			}
			if f := failed.Load(); f > 0 || acked.Load() < int64(n) {
				return 0, fmt.Errorf("direct: %d of %d publishes failed or unacknowledged", f+int64(n)-acked.Load(), n)
			}
			return float64(n) / time.Since(start).Seconds(), nil
		},
		consume: func(seen *nkSeen) (func(), error) {
			subSeen = seen
			return unsubscribe, subscribe()
		},
		stop: func() error { unsubscribe(); return srv.stop() },
		start: func() error {
			if err := srv.start(); err != nil {
				return err
			}
			return subscribe()
		},
		goal: "",
		notes: []string{
			fmt.Sprintf("embedded nats-streaming-server v0.25.6 (file store) in the bench process; target: PublishAsync with maxPubAcksInflight %d, waits for every ack; direct client: stan.go PublishAsync in a continuous pipeline, same window", inflight),
			"NATS Streaming is deprecated upstream; no goal set",
		},
	})
}

// nkServices is services (scripts/services.sh verb name), under the name
// other scenarios call it by.
func nkServices(verb, name string) error { return services(verb, name) }
