package main

// Scenarios "nats", "jetstream" and "nats-streaming": the NATS target in
// each of its modes, beside a direct nats.go / stan.go client, and the drain
// after the server was down, with the broker harness of brokers.go (nkSpec,
// nkRun) and the subscribers of testkit/consumers.
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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/stan.go"

	natsadapter "github.com/bucketrelay/bucketrelay/adapters/nats"
	"github.com/bucketrelay/bucketrelay/bench/harness"
	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/testkit/consumers"
	"github.com/bucketrelay/bucketrelay/wal"
)

func init() {
	harness.Register("nats", runNATSCore)
	harness.Register("jetstream", runJetStream)
	harness.Register("nats-streaming", runNATSStreaming)
}

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

func (b *benchNATS) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

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
		if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("nats-server did not open %s", b.Addr())
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
		t, err := natsadapter.New(cfg, harness.QuietLogger())
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

func runNATSCore(ctx context.Context, o harness.Options) (harness.Result, error) {
	srv, err := newBenchNATS(filepath.Join(o.Dir, "nats"))
	if err != nil {
		return harness.Result{}, err
	}
	defer srv.stop()
	addr := srv.Addr()
	subject := "bucketevents.bench.core"
	return nkRun(ctx, o, nkSpec{
		inFlight:  4,
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: addr, Subject: subject}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			nc, err := natsgo.Connect("nats://" + addr)
			if err != nil {
				return 0, err
			}
			defer nc.Close()
			// The relay's messages: the body and the event's id as
			// Nats-Msg-Id (an id of the same length: log id and sequence).
			msgs := make([]*natsgo.Msg, len(bodies))
			for i, b := range bodies {
				msgs[i] = &natsgo.Msg{Subject: subject, Data: b,
					Header: natsgo.Header{natsgo.MsgIdHdr: {wal.EventID("3f9a0c1d2e4b5a69", uint64(1_000_000+i))}}}
			}
			n, start := 0, time.Now()
			for time.Since(start) < d && ctx.Err() == nil {
				for range nkBatch {
					if err := nc.PublishMsg(msgs[n%len(msgs)]); err != nil {
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
		consume: func(sink consumers.Sink) (func(), error) {
			sub, err := consumers.SubscribeNATS(addr, subject, sink)
			if err != nil {
				return nil, err
			}
			return sub.Close, nil
		},
		stop: srv.stop, start: srv.start,
		goal: "≥ 50000", atMostOnce: true,
		notes: []string{
			natsServerVersion() + " (the binary, own process and store, private loopback port); target publishes each batch and flushes (core NATS, at-most-once); direct client: nats.go PublishMsg × 1000 of the same messages (body and Nats-Msg-Id header, as the relay sends them) then Flush",
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

// jsDirectWindow bounds the direct JetStream client's publishes awaiting
// a PubAck: about the relay's window in this scenario (4 batches of 1000).
const jsDirectWindow = 4096

func runJetStream(ctx context.Context, o harness.Options) (harness.Result, error) {
	srv, err := newBenchNATS(filepath.Join(o.Dir, "nats"))
	if err != nil {
		return harness.Result{}, err
	}
	defer srv.stop()
	addr := srv.Addr()
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
		return harness.Result{}, err
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(cctx, stream)
	if _, err := js.CreateStream(cctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Storage: jetstream.FileStorage}); err != nil {
		return harness.Result{}, err
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
		inFlight:  4,
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: addr, Subject: subject, JetStream: natsadapter.JetStreamConfig{Enable: true}}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			var failed atomic.Int64
			djs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(jsDirectWindow),
				jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *natsgo.Msg, error) { failed.Add(1) }))
			if err != nil {
				return 0, err
			}
			n, start := 0, time.Now()
			for time.Since(start) < d && ctx.Err() == nil {
				// A long stall wait: on a loaded machine the default
				// 200 ms fails the run instead of slowing it.
				if _, err := djs.PublishAsync(subject, bodies[n%len(bodies)], jetstream.WithStallWait(30*time.Second)); err != nil {
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
		consume: func(sink consumers.Sink) (func(), error) {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			info, err := js.Stream(cctx, stream)
			if err != nil {
				return nil, err
			}
			// Only what the outage phase publishes: start after the rate
			// phase's messages.
			first := info.CachedInfo().State.LastSeq + 1
			sub, err := consumers.SubscribeJetStream(cctx, addr, stream,
				jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first}, sink)
			if err != nil {
				return nil, err
			}
			return sub.Close, nil
		},
		stop: srv.stop, start: srv.start,
		goal: "≥ 20000",
		notes: []string{
			natsServerVersion() + " (the binary, own process and store, private loopback port), file-stored stream; target: PublishAsync for the batch, then wait for every PubAck; direct client: jetstream PublishAsync in a continuous pipeline of up to 4096 unacknowledged",
		},
	})
}

func runNATSStreaming(ctx context.Context, o harness.Options) (harness.Result, error) {
	srv := &consumers.StanServer{Cluster: "bench-cluster", Dir: filepath.Join(o.Dir, "stan"), Unlimited: true}
	if err := srv.Start(); err != nil {
		return harness.Result{}, err
	}
	defer srv.Stop()
	const subject = "bucketevents"
	const inflight = 1024
	// A durable subscription: closed while the server is down, it resumes
	// where it stopped.
	var sub struct {
		mu   sync.Mutex
		s    *consumers.Streaming
		sink consumers.Sink
	}
	subscribe := func() error {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		s, err := consumers.SubscribeStreaming(srv.Addr(), srv.Cluster, "bench-consumer", subject, sub.sink,
			stan.DurableName("bench"), stan.MaxInflight(8192))
		sub.s = s
		return err
	}
	unsubscribe := func() {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if sub.s != nil {
			sub.s.Close() // keeps the durable subscription
			sub.s = nil
		}
	}
	return nkRun(ctx, o, nkSpec{
		inFlight: 4,
		newTarget: newNATSTarget(natsadapter.Config{Enable: true, Address: srv.Addr(), Subject: subject,
			Streaming: natsadapter.StreamingConfig{Enable: true, ClusterID: "bench-cluster", ClientID: "bench-relay", Async: true, MaxPubAcksInflight: inflight}}),
		direct: func(ctx context.Context, bodies [][]byte, _ []string, d time.Duration) (float64, error) {
			sc, err := stan.Connect("bench-cluster", "bench-direct", stan.NatsURL("nats://"+srv.Addr()), stan.MaxPubAcksInflight(inflight))
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
		consume: func(sink consumers.Sink) (func(), error) {
			sub.mu.Lock()
			sub.sink = sink
			sub.mu.Unlock()
			return unsubscribe, subscribe()
		},
		stop: func() error { unsubscribe(); srv.Stop(); return nil },
		start: func() error {
			if err := srv.Start(); err != nil {
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
