package relay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/wal"
)

// relayLog is what the relay needs of its log: the delivery engine's
// contract, appends, the counts the status and metrics show, the
// quarantine as an operator reads it, and health. wal.Log satisfies it; a
// JetStream log does through clusterLog. Features only the embedded log
// has (damage, per-target limits, quarantine edits, release) are optional
// interfaces, checked where a user asks for them.
type relayLog interface {
	delivery.Log
	// Append commits entries and returns once they are durable (on disk,
	// or acknowledged by the replicated stream). It keeps nothing of the
	// entries once it returns: ingest reuses them (batchpool.go).
	Append(ctx context.Context, entries ...*wal.Entry) (uint64, error)
	// Cursors returns every target's cursor.
	Cursors() map[string]uint64
	// Events, Bytes and LastSeq describe what the log holds.
	Events() int64
	Bytes() int64
	LastSeq() uint64
	// Health is nil while the log works; Failed is closed when it stopped
	// for good (fail-stop).
	Health() error
	Failed() <-chan struct{}
	// The quarantine as operators list it.
	Quarantined(target string) ([]wal.QuarantineEntry, error)
	QuarantineTargets() []string
	QuarantineCount(target string) int
	QuarantineItems(target string) ([]wal.QuarantineItem, error)
	QuarantineItemAt(target string, seq uint64) (wal.QuarantineItem, bool, error)
	// Close commits the cursors and closes the log.
	Close() error
}

// Optional features of a relay log.
type (
	// damageLog reports damaged frames met (wal.Log).
	damageLog interface{ DamageMet() []wal.Damage }
	// limitLog bounds each target's backlog (wal.Log).
	limitLog interface {
		SetLimit(target string, lim wal.Limit)
		Pending(target string) (events, bytes int64)
		Dropped(target string) uint64
	}
)

var (
	_ relayLog  = (*wal.Log)(nil)
	_ damageLog = (*wal.Log)(nil)
	_ limitLog  = (*wal.Log)(nil)
	_ relayLog  = (*clusterLog)(nil)
)

// ErrNotOnCluster is returned for a feature the cluster log (relay.log
// kind "jetstream") does not have: per-target limits, quarantine edits,
// release, damage reports.
var ErrNotOnCluster = errors.New("relay: not supported on a cluster log")

// walLog returns the embedded log, or ErrNotOnCluster naming what needs
// it on a cluster log.
func (r *Relay) walLog(what string) (*wal.Log, error) {
	if l, ok := r.log.(*wal.Log); ok {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotOnCluster, what)
}

// clusterLog is a JetStream log as the relay uses it. Quarantine and
// cursors are kept per lane in the log; clusterLog shows them per target.
// It never fail-stops: a stream without quorum refuses appends (503) and
// recovers by itself.
type clusterLog struct {
	*jslog.Log
	failed chan struct{} // never closed

	mu    sync.Mutex
	lanes map[string]int // target ARN -> lanes
}

func newClusterLog(l *jslog.Log) *clusterLog {
	return &clusterLog{Log: l, failed: make(chan struct{}), lanes: map[string]int{}}
}

// setLanes records how many lanes target has.
func (c *clusterLog) setLanes(target string, n int) {
	c.mu.Lock()
	c.lanes[target] = max(n, 1)
	c.mu.Unlock()
}

// laneIDs returns target's lane IDs (target itself with one lane).
func (c *clusterLog) laneIDs(target string) []string {
	c.mu.Lock()
	n := max(c.lanes[target], 1)
	c.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = jslog.LaneID(target, i, n)
	}
	return ids
}

// Failed is never closed: the cluster log has no fail-stop.
func (c *clusterLog) Failed() <-chan struct{} { return c.failed }

// baseTarget strips a lane suffix ("arn#2/4") from a lane ID.
func baseTarget(id string) string {
	if i := strings.LastIndexByte(id, '#'); i >= 0 && strings.Contains(id[i:], "/") {
		return id[:i]
	}
	return id
}

// Cursors returns each target's cursor: for a target with lanes, the
// lowest of its lanes'.
func (c *clusterLog) Cursors() map[string]uint64 {
	out := map[string]uint64{}
	for id, cur := range c.Log.Cursors() {
		t := baseTarget(id)
		if v, ok := out[t]; !ok || cur < v {
			out[t] = cur
		}
	}
	return out
}

// Quarantined returns the committed quarantine of every lane of target,
// oldest first.
func (c *clusterLog) Quarantined(target string) ([]wal.QuarantineEntry, error) {
	var out []wal.QuarantineEntry
	for _, id := range c.laneIDs(target) {
		q, err := c.Log.Quarantined(id)
		if err != nil {
			return nil, err
		}
		for i := range q {
			q[i].Target = target
		}
		out = append(out, q...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// QuarantineTargets returns the configured targets with a quarantine.
func (c *clusterLog) QuarantineTargets() []string {
	c.mu.Lock()
	ts := make([]string, 0, len(c.lanes))
	for t := range c.lanes {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	sort.Strings(ts)
	var out []string
	for _, t := range ts {
		if c.QuarantineCount(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// QuarantineCount returns how many entries target's lanes hold; 0 when
// the bucket cannot be read.
func (c *clusterLog) QuarantineCount(target string) int {
	q, err := c.Quarantined(target)
	if err != nil {
		return 0
	}
	return len(q)
}

// QuarantineItems returns target's quarantine as items (first failure =
// last failure: the cluster log does not re-drive).
func (c *clusterLog) QuarantineItems(target string) ([]wal.QuarantineItem, error) {
	q, err := c.Quarantined(target)
	if err != nil {
		return nil, err
	}
	out := make([]wal.QuarantineItem, len(q))
	for i := range q {
		out[i] = wal.QuarantineItem{QuarantineEntry: q[i], FirstFailure: q[i].Time}
	}
	return out, nil
}

// QuarantineItemAt returns target's entry for seq.
func (c *clusterLog) QuarantineItemAt(target string, seq uint64) (wal.QuarantineItem, bool, error) {
	items, err := c.QuarantineItems(target)
	if err != nil {
		return wal.QuarantineItem{}, false, err
	}
	for _, q := range items {
		if q.Seq == seq {
			return q, true, nil
		}
	}
	return wal.QuarantineItem{}, false, nil
}

// openLog opens the log cfg names: the embedded wal (the default) or a
// JetStream stream.
func openLog(cfg *Config, opts Options) (relayLog, error) {
	lc := cfg.Relay.Log
	if lc == nil || lc.Kind == LogWAL {
		l, err := wal.Open(cfg.DataPath("wal.db"), wal.Options{
			MaxEvents:   cfg.Relay.QueueLimit,
			MaxBytes:    cfg.Relay.QueueLimitBytes,
			NoSync:      cfg.Relay.NoSync,
			Retention:   cfg.Relay.Retention.Log(),
			Compression: cfg.Relay.compression(),
			Logger:      opts.Logger,
		})
		if err != nil {
			return nil, err
		}
		return l, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), lc.openTimeout())
	defer cancel()
	l, err := jslog.Open(ctx, lc.JetStream, jslog.Options{Logger: opts.Logger, Name: "bucketrelay " + cfg.Relay.Listen, MaxInFlight: lc.MaxInFlight, Compression: cfg.Relay.compression()})
	if err != nil {
		return nil, fmt.Errorf("relay: opening the cluster log: %w", err)
	}
	return newClusterLog(l), nil
}
