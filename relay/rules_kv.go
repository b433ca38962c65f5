package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bucketrelay/bucketrelay/jslog"
	"github.com/bucketrelay/bucketrelay/rules"
)

// clusterRules keeps the bucket rules set through the API in a key-value
// bucket beside the cluster log's stream (Stream_rules; key: base64url of
// the bucket name, value: the JSON list of rules, [] for "no rules"), so
// that a rule set through any relay process is seen by every one: each
// watches the bucket. With the embedded log they are in rules.json.
type clusterRules struct {
	r  *Relay
	kv jetstream.KeyValue
	w  jetstream.KeyWatcher
}

// newClusterRules opens the rules bucket and loads what it holds into
// r.api; watch keeps it current.
func newClusterRules(ctx context.Context, r *Relay, cl *clusterLog) (*clusterRules, error) {
	octx, cancel := context.WithTimeout(ctx, r.cfg.Relay.Log.openTimeout())
	defer cancel()
	kv, err := cl.Bucket(octx, "rules")
	if err != nil {
		return nil, fmt.Errorf("relay: rules: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay: watching rules: %w", err)
	}
	c := &clusterRules{r: r, kv: kv, w: w}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("relay: watching rules: the watch ended")
			}
			if e == nil {
				return c, nil // every stored entry seen
			}
			c.apply(e)
		case <-octx.Done():
			_ = w.Stop()
			return nil, fmt.Errorf("relay: loading rules: %w", octx.Err())
		}
	}
}

// watch applies every later change until ctx ends.
func (c *clusterRules) watch(ctx context.Context) {
	defer func() { _ = c.w.Stop() }()
	for {
		select {
		case e, ok := <-c.w.Updates():
			if !ok {
				return
			}
			if e != nil {
				c.apply(e)
			}
		case <-ctx.Done():
			return
		}
	}
}

// apply takes one bucket's rules, written by any process.
func (c *clusterRules) apply(e jetstream.KeyValueEntry) {
	r := c.r
	bucket, ok := jslog.IDOf(e.Key())
	if !ok {
		return
	}
	var rs []rules.Rule
	if e.Operation() == jetstream.KeyValuePut {
		if err := json.Unmarshal(e.Value(), &rs); err != nil {
			r.lg.Warn("unreadable bucket rules in the cluster's rules bucket; ignored", "bucket", bucket, "err", err)
			return
		}
		if rs == nil {
			rs = []rules.Rule{}
		}
	}
	for _, x := range rs {
		if !r.isEnabled(x.ARN) {
			r.lg.Warn("a bucket rule set through the API names a target that is not enabled on this relay; events it selects are not delivered to it", "bucket", bucket, "target", x.ARN)
		}
	}
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	next := maps.Clone(r.api)
	if next == nil {
		next = map[string][]rules.Rule{}
	}
	if e.Operation() == jetstream.KeyValuePut {
		next[bucket] = rs
	} else {
		delete(next, bucket)
	}
	r.api = next
	if r.rules != nil {
		r.rules.Replace(r.effectiveRules())
	}
}

// saveRules stores bucket's rules for the whole cluster; it returns once
// the bucket's stream acknowledged them. Called with r.rulesMu held.
func (c *cluster) saveRules(bucket string, rs []rules.Rule) error {
	b, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	if rs == nil {
		b = []byte("[]")
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	if _, err := c.rules.kv.Put(ctx, jslog.KeyOf(bucket), b); err != nil {
		return fmt.Errorf("relay: saving rules in the cluster: %w", err)
	}
	return nil
}
