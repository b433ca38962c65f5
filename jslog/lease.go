package jslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/event"
)

// DefaultLeaseTTL is how long a lease outlives its holder's last renewal.
const DefaultLeaseTTL = 3 * time.Second

// LaneOf returns the lane of key ("bucket/object") among lanes: FNV-1a of
// the key modulo lanes, so every event of one object is in one lane.
func LaneOf(key string, lanes int) int { return event.LaneOf(key, lanes) }

// LaneID names lane i of n of target for the log's methods: cursors,
// quarantine and leases are kept per lane ID, and Read with a lane ID
// passes only the target's records whose key falls in the lane. With one
// lane the target's own ID is used.
func LaneID(target string, lane, lanes int) string {
	if lanes <= 1 {
		return target
	}
	return target + "#" + strconv.Itoa(lane) + "/" + strconv.Itoa(lanes)
}

// parseLane splits a lane ID; a plain target ID is lane 0 of 1.
func parseLane(id string) (target string, lane, lanes int) {
	i := strings.LastIndexByte(id, '#')
	if i < 0 {
		return id, 0, 1
	}
	a, b, ok := strings.Cut(id[i+1:], "/")
	if !ok {
		return id, 0, 1
	}
	l, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 2 || l < 0 || l >= n {
		return id, 0, 1
	}
	return id[:i], l, n
}

// Leases hands out named leases (one per target lane) to one process of
// the cluster at a time, on a KV bucket whose entries expire TTL after
// their last write: the holder renews every TTL/3, and when it dies its
// entry expires and another process creates it. No election of our own:
// the bucket's compare-and-set decides.
type Leases struct {
	kv    jetstream.KeyValue
	owner string
	ttl   time.Duration
	lg    *slog.Logger

	mu      sync.Mutex
	freed   chan struct{} // closed and replaced when any lease is removed
	stopped chan struct{}
}

// LeaseConfig configures Leases.
type LeaseConfig struct {
	// Owner names this process in the bucket (shown by status); required,
	// unique per process (for example host:port of its HTTP listener).
	Owner string
	// TTL is how long a lease outlives its holder's last renewal; 0 means
	// DefaultLeaseTTL. It is fixed when the bucket is created: every
	// process of the cluster should use the same.
	TTL time.Duration
}

// Leases opens (creating if needed) the lease bucket Stream_leases and
// watches it until ctx ends.
func (l *Log) Leases(ctx context.Context, cfg LeaseConfig) (*Leases, error) {
	if cfg.Owner == "" {
		return nil, errors.New("jslog: a lease owner is required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultLeaseTTL
	}
	name := l.cfg.Stream + "_leases"
	get := func(ctx context.Context) (jetstream.KeyValue, error) { return l.js.KeyValue(ctx, name) }
	kv, err := retry(ctx, get)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
			return l.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: name, History: 1, Storage: jetstream.FileStorage, Replicas: l.replicas,
				TTL: cfg.TTL, LimitMarkerTTL: max(cfg.TTL, time.Second),
			})
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = retry(ctx, get)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jslog: lease bucket %s: %w", name, err)
	}
	if st, err := kv.Status(ctx); err == nil && st.TTL() != cfg.TTL {
		l.lg.Warn("jslog: the lease bucket's TTL differs from the configured one; the bucket's holds", "bucket", name, "bucketTTL", st.TTL(), "configured", cfg.TTL)
		cfg.TTL = st.TTL()
	}
	s := &Leases{kv: kv, owner: cfg.Owner, ttl: cfg.TTL, lg: l.lg.With("owner", cfg.Owner), freed: make(chan struct{}), stopped: make(chan struct{})}
	w, err := retry(ctx, func(context.Context) (jetstream.KeyWatcher, error) { return kv.WatchAll(ctx, jetstream.UpdatesOnly()) })
	if err != nil {
		return nil, fmt.Errorf("jslog: watching leases: %w", err)
	}
	go func() {
		defer close(s.stopped)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil && e.Operation() != jetstream.KeyValuePut {
					s.mu.Lock()
					close(s.freed)
					s.freed = make(chan struct{})
					s.mu.Unlock()
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return s, nil
}

// TTL returns the leases' time to live.
func (s *Leases) TTL() time.Duration { return s.ttl }

// Owner returns the holder of lease name, "" if none.
func (s *Leases) Owner(ctx context.Context, name string) (string, error) {
	e, err := s.kv.Get(ctx, keyOf(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("jslog: reading lease %s: %w", name, err)
	}
	return string(e.Value()), nil
}

// Hold runs fn whenever this process holds lease name, until ctx ends. It
// takes the lease when it is free (at once when the watch sees it expire,
// otherwise within TTL/3), renews it every TTL/3, and cancels fn's context
// when it may have lost it: a renewal refused, or none acknowledged for
// 2/3 of TTL, so that fn stops before another process can take the lease
// (a third of TTL earlier than the bucket lets anyone). Hold waits for fn
// to return before trying again, and releases the lease when ctx ends.
func (s *Leases) Hold(ctx context.Context, name string, fn func(ctx context.Context)) {
	key := keyOf(name)
	val := []byte(s.owner)
	tick := s.ttl / 3
	for ctx.Err() == nil {
		s.mu.Lock()
		freed := s.freed
		s.mu.Unlock()
		rev, err := s.kv.Create(ctx, key, val)
		if err != nil {
			// Held by another process (or the bucket is unreachable):
			// wait for a removal or the next tick.
			select {
			case <-freed:
			case <-time.After(tick):
			case <-ctx.Done():
			}
			continue
		}
		s.lg.Info("jslog: lease taken", "lease", name)
		s.hold(ctx, name, key, val, rev, fn)
	}
}

// hold runs fn while renewing the lease at rev.
func (s *Leases) hold(ctx context.Context, name, key string, val []byte, rev uint64, fn func(context.Context)) {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(fctx) }()
	defer func() {
		cancel()
		<-done
	}()
	tick := time.NewTicker(s.ttl / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-done
			// Release, so another process need not wait for the TTL.
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.kv.Delete(rctx, key, jetstream.LastRevision(rev))
			rcancel()
			return
		case <-done:
			// fn gave up the lane: release it.
			rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.kv.Delete(rctx, key, jetstream.LastRevision(rev))
			rcancel()
			return
		case <-tick.C:
		}
		// The lease is ours until renewed+TTL on the servers' clocks; stop
		// fn a third of TTL before that unless a renewal gets through.
		deadline := renewed.Add(2 * s.ttl / 3)
		start := time.Now()
		rctx, rcancel := context.WithDeadline(ctx, deadline)
		r, err := s.kv.Update(rctx, key, val, rev)
		rcancel()
		if err == nil {
			rev, renewed = r, start
			continue
		}
		if code, _, ok := apiCode(err); ok && (code == jetstream.JSErrCodeStreamWrongLastSequence || code == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			s.lg.Warn("jslog: lease lost to another process", "lease", name)
			return
		}
		if !time.Now().Before(deadline) {
			s.lg.Warn("jslog: lease not renewed in time; giving it up", "lease", name, "err", err)
			return
		}
	}
}

// memberKey is where a process spreading leases announces itself; lease
// keys are base64url, which has no dot, so the two never collide.
func memberKey(owner string) string { return "m." + keyOf(owner) }

// Spread holds a fair share of the leases named: at most
// ceil(len(names)/members), where members counts the processes spreading
// on this bucket (each renews a member entry that expires like a lease).
// When a process joins, the others release what exceeds their new share;
// when one dies, its leases expire and the others take them, up to the
// new share. fn runs once per lease held, with the lease's name, until its
// context is cancelled (lease lost, released or ctx ended). Spread returns
// when ctx ends, having released everything.
func (s *Leases) Spread(ctx context.Context, names []string, fn func(ctx context.Context, name string)) {
	tick := time.NewTicker(s.ttl / 3)
	defer tick.Stop()
	type held struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	holding := map[string]*held{}
	var wg sync.WaitGroup
	defer func() {
		for _, h := range holding {
			h.cancel()
		}
		wg.Wait()
		dctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.kv.Delete(dctx, memberKey(s.owner))
		cancel()
	}()
	val := []byte(s.owner)
	for {
		// Forget leases whose hold ended (lost or fn returned).
		for n, h := range holding {
			select {
			case <-h.done:
				delete(holding, n)
			default:
			}
		}
		members := s.members(ctx)
		share := (len(names) + members - 1) / max(members, 1)
		// Release the excess, last names first, so others can take them.
		for i := len(names) - 1; i >= 0 && len(holding) > share; i-- {
			if h, ok := holding[names[i]]; ok {
				h.cancel()
				<-h.done
				delete(holding, names[i])
				s.lg.Info("jslog: lease released to spread the load", "lease", names[i], "members", members)
			}
		}
		for _, n := range names {
			if len(holding) >= share || ctx.Err() != nil {
				break
			}
			if _, ok := holding[n]; ok {
				continue
			}
			rev, err := s.kv.Create(ctx, keyOf(n), val)
			if err != nil {
				continue
			}
			s.lg.Info("jslog: lease taken", "lease", n, "members", members)
			lctx, cancel := context.WithCancel(ctx)
			h := &held{cancel: cancel, done: make(chan struct{})}
			holding[n] = h
			wg.Add(1)
			go func(name string, rev uint64) {
				defer wg.Done()
				defer close(h.done)
				s.hold(lctx, name, keyOf(name), val, rev, func(fctx context.Context) { fn(fctx, name) })
			}(n, rev)
		}
		s.mu.Lock()
		freed := s.freed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-freed:
		}
	}
}

// members renews this process's member entry and counts the live ones
// (at least 1: this process).
func (s *Leases) members(ctx context.Context) int {
	rctx, cancel := context.WithTimeout(ctx, s.ttl/3)
	defer cancel()
	_, _ = s.kv.Put(rctx, memberKey(s.owner), []byte(s.owner))
	keys, err := s.kv.ListKeysFiltered(rctx, "m.>")
	if err != nil {
		return 1
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	return max(n, 1)
}
