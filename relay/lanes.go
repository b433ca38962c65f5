package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/wal"
)

// cluster runs the relay as one process of a cluster on the JetStream
// log: every enabled target is split into lanes (TargetConfig.Lanes,
// default 1), and each lane is drained by the one process holding its
// lease (jslog.Leases.Spread: a fair share per process). A lane's loop is
// added to the engine when its lease is won and removed when it is lost.
type cluster struct {
	r      *Relay
	log    *clusterLog
	owner  string
	leases *jslog.Leases
	names  []string            // every lane ID, sorted
	lanes  map[string]laneSpec // by lane ID
	rules  *clusterRules       // rules_kv.go
	extra  map[string]delivery.Target
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	done   chan struct{} // closed when Spread returned

	mu    sync.Mutex
	held  map[string]time.Time // lanes this process drains, since when
	taken map[string]uint64    // lanes taken by this process, counted
}

// laneSpec is one lane of a target.
type laneSpec struct {
	id, arn     string
	lane, lanes int
	tc          *TargetConfig   // nil for a target given in Options
	extra       delivery.Target // a target given in Options
}

// openCluster prepares the lanes of every enabled target, registering
// their cursors before the relay takes any event, so that no event
// appended before a lane's first drain is skipped.
func (r *Relay) openCluster(cl *clusterLog, opts Options, enabled map[string]bool) error {
	lc := r.cfg.Relay.Log
	owner := lc.Owner
	if owner == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(r.cfg.Relay.Listen)
		owner = host + ":" + port
	}
	if ws := cl.Warnings(); len(ws) > 0 {
		r.lg.Warn("the cluster log's stream cannot keep every promise; see the warnings above and README, Running a cluster", "warnings", len(ws))
	}
	c := &cluster{
		r: r, log: cl, owner: owner, lanes: map[string]laneSpec{}, extra: opts.Targets,
		held: map[string]time.Time{}, taken: map[string]uint64{}, done: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	fail := func(err error) error { c.cancel(); return err }
	leases, err := cl.Leases(c.ctx, jslog.LeaseConfig{Owner: owner, TTL: lc.leaseTTL()})
	if err != nil {
		return fail(fmt.Errorf("relay: %w", err))
	}
	c.leases = leases
	cursors := cl.Log.Cursors()
	add := func(arn string, n int, tc *TargetConfig, extra delivery.Target) {
		cl.setLanes(arn, n)
		ids := map[string]bool{}
		for i := range n {
			ids[jslog.LaneID(arn, i, n)] = true
		}
		// Cursors of the target under another number of lanes (its
		// "lanes" changed): new lanes start at the oldest of them, so
		// nothing between is skipped; the old ones pin the stream until
		// deleted.
		var from uint64
		var stale []string
		for id, cur := range cursors {
			if baseTarget(id) == arn && !ids[id] {
				stale = append(stale, id)
				if from == 0 || cur < from {
					from = cur
				}
			}
		}
		if len(stale) > 0 {
			sort.Strings(stale)
			r.lg.Warn("the target has cursors for another number of lanes; its new lanes start at the oldest of them (events in between may be delivered twice). Once no relay runs the old lanes, delete their entries from the cursor bucket so the stream can be reclaimed",
				"target", arn, "lanes", n, "old", stale, "bucket", cl.Stream()+"_cursors")
		}
		for i := range n {
			id := jslog.LaneID(arn, i, n)
			c.lanes[id] = laneSpec{id: id, arn: arn, lane: i, lanes: n, tc: tc, extra: extra}
			c.names = append(c.names, id)
			cl.RegisterFrom(id, from)
		}
		enabled[arn] = true
	}
	for i := range r.cfg.Targets {
		tc := &r.cfg.Targets[i]
		if !tc.Enabled {
			continue
		}
		// Build once now so that a target that cannot be built stops the
		// start, as it does with the embedded log; lanes build their own.
		t, err := kindByName[tc.Kind].Build(tc.Params, r.lg.With("target", tc.ARN))
		if err != nil {
			return fail(fmt.Errorf("relay: %s: %w", tc.ARN, err))
		}
		_ = t.Close()
		add(tc.ARN, max(tc.Lanes, 1), tc, nil)
	}
	for arn, t := range opts.Targets {
		if enabled[arn] {
			return fail(fmt.Errorf("relay: target %s is both configured and given in Options", arn))
		}
		add(arn, 1, nil, t)
	}
	sort.Strings(c.names)
	r.cluster = c
	r.tgt.set.Store(newTargetSet(enabled)) // the cluster rules check targets
	crules, err := newClusterRules(c.ctx, r, cl)
	if err != nil {
		return fail(err)
	}
	c.rules = crules
	r.lg.Info("relay: running on the cluster log", "owner", owner, "stream", cl.Stream(), "lanes", len(c.names), "leaseTTL", leases.TTL())
	return nil
}

// start spreads the lanes' leases over the cluster's processes until
// Close.
func (c *cluster) start(ctx context.Context) {
	c.r.metrics.reg.MustRegister(&clusterMetrics{c: c})
	go c.rules.watch(c.ctx)
	go func() {
		defer close(c.done)
		c.leases.Spread(c.ctx, c.names, c.runLane)
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-c.r.done:
			// The engine stopped on an error it cannot retry: let the
			// other relays drain this one's lanes.
			c.r.lg.Error("delivery stopped; releasing this relay's lanes to the other relays (it still takes events)")
		}
		c.cancel()
	}()
}

// stop releases every lane (their loops stop with the engine) and stops
// watching rules.
func (c *cluster) stop() {
	c.cancel()
	<-c.done
}

// runLane drains lane id while this process holds its lease: ctx ends
// when the lease is lost or released.
func (c *cluster) runLane(ctx context.Context, id string) {
	ls := c.lanes[id]
	lg := c.r.lg.With("target", ls.arn, "lane", id)
	var t delivery.Target
	var maxBatch int
	var policy delivery.Policy
	namespace := false
	if ls.extra != nil {
		t = keepOpen{ls.extra}
	} else {
		k := kindByName[ls.tc.Kind]
		var err error
		t, err = k.Build(ls.tc.Params, lg)
		if err != nil {
			lg.Error("building the target for a lane; releasing the lane", "err", err)
			return
		}
		maxBatch, namespace, policy = ls.tc.maxBatch(), ls.tc.Namespace, ls.tc.Policy
	}
	if err := c.r.eng.Add(delivery.Spec{ID: id, Target: c.r.abortable(t), Namespace: namespace, MaxBatch: maxBatch, Policy: policy}); err != nil {
		if ls.extra == nil {
			_ = t.Close()
		}
		lg.Warn("starting a lane's delivery", "err", err)
		return
	}
	c.mu.Lock()
	c.held[id] = time.Now()
	c.taken[id]++
	c.mu.Unlock()
	lg.Info("draining lane", "owner", c.owner)
	<-ctx.Done()
	c.mu.Lock()
	delete(c.held, id)
	c.mu.Unlock()
	// The lease is ours for a third of TTL more: stop sending before
	// another process may take the lane.
	rctx, cancel := context.WithTimeout(context.Background(), c.leases.TTL()/3)
	defer cancel()
	if err := c.r.eng.Remove(rctx, id); err != nil {
		lg.Warn("stopping a lane's delivery", "err", err)
	}
	lg.Info("lane released", "owner", c.owner)
}

// keepOpen is a target given in Options: the lane's loop must not close
// it, since the lane may come back.
type keepOpen struct{ delivery.Target }

// Close does nothing; the embedding program owns the target.
func (keepOpen) Close() error { return nil }

// LaneStatus is one lane of a target as the cluster sees it.
type LaneStatus struct {
	// Target is the target's ARN; ID the lane's ID in the log (the ARN
	// itself for a target with one lane).
	Target string `json:"target"`
	ID     string `json:"id"`
	Lane   int    `json:"lane"`
	Lanes  int    `json:"lanes"`
	// Owner is the relay process holding the lane's lease ("" if none).
	Owner string `json:"owner"`
	// Here reports that this process drains the lane.
	Here bool `json:"here"`
	// Cursor is the next sequence the lane has to deliver; Lag the
	// records routed to the whole target after it, as this process's
	// index sees them (an upper bound for one lane of several).
	Cursor uint64 `json:"cursor"`
	Lag    int64  `json:"lag"`
	// InQuarantine counts the lane's committed quarantine entries.
	InQuarantine int `json:"inQuarantine"`
}

// ClusterStatus returns every lane of every target with its owner; nil
// when the relay runs on the embedded log.
func (r *Relay) ClusterStatus(ctx context.Context) ([]LaneStatus, error) {
	c := r.cluster
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	held := make(map[string]bool, len(c.held))
	for id := range c.held {
		held[id] = true
	}
	c.mu.Unlock()
	out := make([]LaneStatus, 0, len(c.names))
	for _, id := range c.names {
		ls := c.lanes[id]
		owner, err := c.leases.Owner(ctx, id)
		if err != nil {
			return nil, err
		}
		cur, _ := c.log.Cursor(id)
		q, err := c.log.Log.Quarantined(id)
		if err != nil {
			return nil, err
		}
		s := LaneStatus{Target: ls.arn, ID: id, Lane: ls.lane, Lanes: ls.lanes, Owner: owner, Here: held[id], Cursor: cur, InQuarantine: len(q)}
		if n, last := c.log.Routed(id); last >= cur && n > 0 {
			s.Lag = lagOf(c.log, id, cur, last)
		}
		out = append(out, s)
	}
	return out, nil
}

// lagOf counts the records of lane id from cur to last, reading the log
// no further than a few thousand records (a larger lag is a lower bound).
func lagOf(l *clusterLog, id string, cur, last uint64) int64 {
	const limit = 100_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	_, _ = l.Read(ctx, cur, id, func(rec wal.Record) bool {
		n++
		return n < limit && rec.Seq <= last
	})
	return n
}

// clusterMetrics exposes each lane: held by this process, and how often
// it took the lane.
type clusterMetrics struct{ c *cluster }

var (
	laneHeldDesc  = prometheus.NewDesc("relay_lane_held", "1 while this relay process drains the target's lane (holds its lease).", []string{"target", "lane"}, nil)
	laneTakenDesc = prometheus.NewDesc("relay_lane_taken_total", "Times this relay process took the target's lane (its lease).", []string{"target", "lane"}, nil)
)

// Describe implements prometheus.Collector.
func (m *clusterMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- laneHeldDesc
	ch <- laneTakenDesc
}

// Collect implements prometheus.Collector.
func (m *clusterMetrics) Collect(ch chan<- prometheus.Metric) {
	c := m.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range c.names {
		ls := c.lanes[id]
		lane := fmt.Sprint(ls.lane)
		held := 0.0
		if _, ok := c.held[id]; ok {
			held = 1
		}
		ch <- prometheus.MustNewConstMetric(laneHeldDesc, prometheus.GaugeValue, held, ls.arn, lane)
		ch <- prometheus.MustNewConstMetric(laneTakenDesc, prometheus.CounterValue, float64(c.taken[id]), ls.arn, lane)
	}
}
