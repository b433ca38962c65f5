package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/event"
	"github.com/bucketrelay/bucketrelay/rules"
	"github.com/bucketrelay/bucketrelay/wal"
)

// Options are what an embedding program adds to a Config.
type Options struct {
	// Logger receives the relay's messages; nil means slog.Default().
	Logger *slog.Logger
	// Targets are extra targets by ARN, beside those of the config's
	// "notify" section: a storage server's own destinations, or tests'.
	Targets map[string]delivery.Target
}

// Relay routes, logs and delivers events. Its methods are safe for
// concurrent use.
type Relay struct {
	cfg     *Config
	lg      *slog.Logger
	log     *wal.Log
	eng     *delivery.Engine
	rules   *rules.Set
	file    map[string][]rules.Rule // rules from the config file
	arns    []string                // enabled targets
	enabled map[string]bool
	metrics *metrics

	rulesMu sync.Mutex              // serializes rule changes
	api     map[string][]rules.Rule // rules set through the API; nil slice = deleted

	live live // watchers and lag history (watch.go, statuspage.go)

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// ErrInvalid is wrapped by Publish errors about a malformed record.
var ErrInvalid = errors.New("relay: invalid record")

// Open opens the log in cfg's data directory, builds the enabled targets
// and starts delivering. It does not wait for any target: one that is down
// is retried in the background.
func Open(cfg *Config, opts Options) (*Relay, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	if err := os.MkdirAll(cfg.Relay.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: data directory: %w", err)
	}
	l, err := wal.Open(cfg.DataPath("wal.db"), wal.Options{
		MaxEvents: cfg.Relay.QueueLimit,
		MaxBytes:  cfg.Relay.QueueLimitBytes,
		NoSync:    cfg.Relay.NoSync,
		Logger:    lg,
	})
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg: cfg, lg: lg, log: l, file: cfg.Buckets, enabled: map[string]bool{},
		api: map[string][]rules.Rule{}, done: make(chan struct{}),
	}
	r.eng = delivery.New(l, delivery.Options{
		MinBackoff:  duration(cfg.Relay.MinBackoff, delivery.DefaultMinBackoff),
		MaxBackoff:  duration(cfg.Relay.MaxBackoff, delivery.DefaultMaxBackoff),
		MaxAttempts: cfg.Relay.MaxAttempts,
		Logger:      lg,
	})
	fail := func(err error) (*Relay, error) {
		l.Close()
		return nil, err
	}
	for _, tc := range cfg.Targets {
		if !tc.Enabled {
			continue
		}
		k := kindByName[tc.Kind]
		t, err := k.build(tc.Params, lg.With("target", tc.ARN))
		if err != nil {
			return fail(fmt.Errorf("relay: %s: %w", tc.ARN, err))
		}
		if err := r.eng.Add(delivery.Spec{ID: tc.ARN, Target: t, Namespace: tc.Namespace, MaxBatch: k.maxBatch}); err != nil {
			return fail(err)
		}
		r.enabled[tc.ARN] = true
	}
	extra := make([]string, 0, len(opts.Targets))
	for arn := range opts.Targets {
		extra = append(extra, arn)
	}
	sort.Strings(extra)
	for _, arn := range extra {
		if _, err := rules.ParseARN(arn); err != nil {
			return fail(err)
		}
		if r.enabled[arn] {
			return fail(fmt.Errorf("relay: target %s is both configured and given in Options", arn))
		}
		if err := r.eng.Add(delivery.Spec{ID: arn, Target: opts.Targets[arn]}); err != nil {
			return fail(err)
		}
		r.enabled[arn] = true
	}
	for arn := range r.enabled {
		r.arns = append(r.arns, arn)
	}
	sort.Strings(r.arns)
	if err := r.loadAPIRules(); err != nil {
		return fail(err)
	}
	r.rules = rules.NewSet(r.effectiveRules())
	r.warnStale()
	r.metrics = newMetrics(r)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.eng.Run(ctx)
	}()
	return r, nil
}

// warnStale logs cursors of targets that are no longer configured: the log
// keeps their pending events.
func (r *Relay) warnStale() {
	for t := range r.log.Cursors() {
		if !r.enabled[t] {
			r.lg.Warn("a target with a cursor in the log is not configured or not enabled; its pending events are kept until it is enabled again", "target", t)
		}
	}
}

// ARNs returns the ARNs of the enabled targets, sorted.
func (r *Relay) ARNs() []string { return append([]string(nil), r.arns...) }

// Log returns the relay's write-ahead log (for inspection and metrics).
func (r *Relay) Log() *wal.Log { return r.log }

// Stats returns per-target delivery statistics.
func (r *Relay) Stats() []delivery.Stats { return r.eng.Stats() }

// Publish validates records, routes each by its bucket's rules and appends
// them to the log. It returns once they are durable. A record no rule
// selects is accepted and dropped (as an object store does without a
// notification configuration).
func (r *Relay) Publish(ctx context.Context, records ...event.Record) error {
	raws := make([]json.RawMessage, len(records))
	buf := make([]byte, 0, 1024*len(records))
	for i := range records {
		start := len(buf)
		buf = records[i].AppendJSON(buf)
		raws[i] = buf[start:len(buf):len(buf)]
	}
	_, err := r.publish(ctx, records, raws)
	return err
}

// routingPaths are what the relay reads of a JSON record: what routing and
// validation need. Reading only these (with gjson, which finds them without
// decoding the rest) keeps ingest cheap; the record's bytes are stored as
// they came.
var routingPaths = []string{"eventName", "eventTime", "s3.bucket.name", "s3.object.key"}

// PublishJSON is Publish for records already encoded as JSON, such as
// those an object store's webhook posts: the bytes are stored and delivered
// as they are (pretty-printed records are compacted), so fields the relay
// does not model survive. It returns how many records were appended.
func (r *Relay) PublishJSON(ctx context.Context, raws ...json.RawMessage) (int, error) {
	return r.publishJSON(ctx, raws, false)
}

// publishJSON is PublishJSON; valid says the records were already checked
// to be valid JSON (sliced from a validated body).
func (r *Relay) publishJSON(ctx context.Context, raws []json.RawMessage, valid bool) (int, error) {
	recs := make([]event.Record, len(raws))
	for i, raw := range raws {
		if !valid && !gjson.ValidBytes(raw) {
			return 0, fmt.Errorf("%w %d: not valid JSON", ErrInvalid, i)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return 0, fmt.Errorf("%w %d: not a JSON object", ErrInvalid, i)
		}
		f := gjson.GetManyBytes(raw, routingPaths...)
		for j, v := range f {
			if v.Exists() && v.Type != gjson.String {
				return 0, fmt.Errorf("%w %d: %s is not a string", ErrInvalid, i, routingPaths[j])
			}
		}
		rec := &recs[i]
		rec.EventName, rec.EventTime = event.Name(f[0].Str), f[1].Str
		rec.S3.Bucket.Name, rec.S3.Object.Key = f[2].Str, f[3].Str
		if bytes.IndexByte(raw, '\n') >= 0 {
			raws[i] = event.Normalize(raw)
		}
	}
	return r.publish(ctx, recs, raws)
}

func (r *Relay) publish(ctx context.Context, recs []event.Record, raws []json.RawMessage) (int, error) {
	start := time.Now()
	entries := make([]*wal.Entry, 0, len(recs))
	store := make([]wal.Entry, len(recs))
	var match []string
	for i := range recs {
		rec := &recs[i]
		if err := rec.Validate(); err != nil {
			return 0, fmt.Errorf("%w %d: %v", ErrInvalid, i, err)
		}
		match = r.rules.Match(match, rec.S3.Bucket.Name, rec.ObjectKey(), rec.EventName)
		if len(match) == 0 {
			continue
		}
		e := &store[i]
		for _, a := range match {
			if r.enabled[a] {
				e.Targets = append(e.Targets, a)
			}
		}
		if len(e.Targets) == 0 {
			continue
		}
		e.Key = rec.Key()
		e.Name = string(rec.EventName)
		e.EventTime = rec.Time()
		e.Data = raws[i]
		entries = append(entries, e)
	}
	if len(entries) > 0 {
		if _, err := r.log.Append(ctx, entries...); err != nil {
			return 0, err
		}
	}
	r.publishLive(recs, raws) // watchers; one atomic load when nobody watches
	r.metrics.observeIngest(len(recs), time.Since(start))
	return len(recs), nil
}

// Close stops accepting events, lets sends in flight finish, commits the
// cursors and closes the log.
func (r *Relay) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		<-r.done
		err = r.log.Close()
	})
	return err
}

// Bucket rules.

// BucketRules returns bucket's effective rules.
func (r *Relay) BucketRules(bucket string) []rules.Rule { return r.rules.Bucket(bucket) }

// SetBucketRules replaces bucket's rules, as an S3 PUT of a bucket
// notification configuration does. Every rule's target must be enabled.
// The rules are persisted in the data directory and override the config
// file's rules for that bucket; an empty list removes every rule.
func (r *Relay) SetBucketRules(bucket string, rs []rules.Rule) error {
	if bucket == "" {
		return errors.New("relay: empty bucket name")
	}
	norm := make([]rules.Rule, 0, len(rs))
	for _, x := range rs {
		n, err := x.Normalize()
		if err != nil {
			return err
		}
		if !r.enabled[n.ARN] {
			return fmt.Errorf("%w: %s (enabled targets: %v)", ErrUnknownARN, n.ARN, r.arns)
		}
		norm = append(norm, n)
	}
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	next := make(map[string][]rules.Rule, len(r.api)+1)
	for b, x := range r.api {
		next[b] = x
	}
	next[bucket] = norm
	if err := r.saveAPIRules(next); err != nil {
		return err
	}
	r.api = next
	r.rules.Replace(r.effectiveRules())
	return nil
}

// ErrUnknownARN is returned by SetBucketRules for a rule whose target is
// not an enabled target.
var ErrUnknownARN = errors.New("relay: no enabled target with ARN")

func (r *Relay) effectiveRules() map[string][]rules.Rule {
	m := map[string][]rules.Rule{}
	for b, rs := range r.file {
		m[b] = rs
	}
	for b, rs := range r.api {
		m[b] = rs
	}
	return m
}

const rulesFile = "rules.json"

func (r *Relay) loadAPIRules() error {
	b, err := os.ReadFile(r.cfg.DataPath(rulesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if err := json.Unmarshal(b, &r.api); err != nil {
		return fmt.Errorf("relay: %s: %w", r.cfg.DataPath(rulesFile), err)
	}
	for b, rs := range r.api {
		for _, x := range rs {
			if !r.enabled[x.ARN] {
				r.lg.Warn("a bucket rule names a target that is not enabled; events it selects are not delivered to it", "bucket", b, "target", x.ARN)
			}
		}
	}
	return nil
}

// saveAPIRules writes the API rules atomically and durably.
func (r *Relay) saveAPIRules(m map[string][]rules.Rule) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := r.cfg.DataPath(rulesFile)
	tmp, err := os.CreateTemp(filepath.Dir(path), rulesFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("relay: saving rules: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("relay: saving rules: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("relay: saving rules: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("relay: saving rules: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("relay: saving rules: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
