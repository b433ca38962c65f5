package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/wal"
)

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	// Dir holds the log (wal.db); it is created if missing. Required.
	Dir string
	// Target receives the log's events. Required; the engine closes it
	// when it stops running.
	Target delivery.Target
	// ID is the target's id in the log. Default: DefaultPipelineID.
	ID string
	// Namespace sets delivery.Spec.Namespace (coalescing per key).
	Namespace bool
	// MaxBatch is the engine's batch size. Default: 1000.
	MaxBatch int
	// MaxBackoff is the engine's longest retry wait. Default: 1 s.
	MaxBackoff time.Duration
	// Policy is the target's delivery policy (batches in flight, lanes).
	Policy delivery.Policy
}

// DefaultPipelineID is a Pipeline's target id when PipelineConfig.ID is
// empty.
const DefaultPipelineID = "arn:minio:sqs::bench:queue"

// Pipeline is a log and an engine draining it into one target: the relay's
// delivery path without HTTP and routing, which the broker and store
// scenarios feed with prepared entries.
type Pipeline struct {
	// Log is the pipeline's log (default options, fsync on).
	Log *wal.Log
	// Engine drains Log into the target once Run was called.
	Engine *delivery.Engine
	// ID is the target's id, for wal.Entry.Targets.
	ID string

	cancel context.CancelFunc
	done   chan struct{}
}

// OpenPipeline opens the log and adds the target to an engine that is not
// running yet: call Run (after prefilling a backlog, for a drain).
func OpenPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.ID == "" {
		cfg.ID = DefaultPipelineID
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	l, err := wal.Open(filepath.Join(cfg.Dir, "wal.db"), wal.Options{Logger: QuietLogger()})
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Log: l, ID: cfg.ID}
	p.Engine = delivery.New(l, delivery.Options{MaxBackoff: cfg.MaxBackoff, Logger: QuietLogger()})
	if err := p.Engine.Add(delivery.Spec{ID: cfg.ID, Target: cfg.Target, Namespace: cfg.Namespace, MaxBatch: cfg.MaxBatch, Policy: cfg.Policy}); err != nil {
		l.Close()
		return nil, err
	}
	return p, nil
}

// Run starts the engine; Close stops it.
func (p *Pipeline) Run() {
	if p.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() { p.Engine.Run(ctx); close(p.done) }()
}

// Append appends entries to the log (durably: it returns after fsync).
func (p *Pipeline) Append(ctx context.Context, es ...*wal.Entry) error {
	_, err := p.Log.Append(ctx, es...)
	return err
}

// Stats returns the target's delivery figures.
func (p *Pipeline) Stats() delivery.Stats { return p.Engine.Stats()[0] }

// Close stops the engine, if running, and closes the log.
func (p *Pipeline) Close() {
	if p.done != nil {
		p.cancel()
		<-p.done
	}
	p.Log.Close()
}

// Backlog bounds of BacklogRate.
const (
	backlogLow  = 20_000
	backlogHigh = 100_000
)

// BacklogRate runs the engine (if not running) while two feeders append
// the batches next returns, keeping 20k-100k events pending, and returns
// the events delivered per second over d, measured once the backlog passed
// 20,000 (waiting up to wait for that). next must be safe for concurrent
// use. A quarantined event is an error: the rate would not be a delivery
// rate.
func (p *Pipeline) BacklogRate(ctx context.Context, d, wait time.Duration, next func() []*wal.Entry) (float64, error) {
	p.Run()
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var feedErr atomic.Pointer[error]
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fctx.Err() == nil {
				if p.Stats().Pending > backlogHigh {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				if err := p.Append(fctx, next()...); err != nil && fctx.Err() == nil {
					feedErr.Store(&err)
					return
				}
			}
		}()
	}
	defer func() { stopFeed(); wg.Wait() }()
	if !WaitFor(ctx, wait, func() bool { return p.Stats().Pending > backlogLow }) {
		if e := feedErr.Load(); e != nil {
			return 0, *e
		}
		return 0, fmt.Errorf("backlog never reached 20,000 (last error: %s)", p.Stats().LastError)
	}
	s0, t0 := p.Stats().Delivered, time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	st, t1 := p.Stats(), time.Now()
	if e := feedErr.Load(); e != nil {
		return 0, *e
	}
	if st.Quarantined > 0 {
		return 0, fmt.Errorf("%d events quarantined: %s", st.Quarantined, st.LastError)
	}
	return float64(st.Delivered-s0) / t1.Sub(t0).Seconds(), nil
}
