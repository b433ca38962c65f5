package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
	log     relayLog // *wal.Log or *clusterLog (clusterlog.go)
	eng     *delivery.Engine
	rules   *rules.Set
	file    map[string][]rules.Rule // rules from the config file
	tgt     targetState             // the running targets and where they come from (runtime_targets.go)
	metrics *metrics
	pause   pauseState  // paused targets (operate.go)
	gate    *ingestGate // bounds ingest's CPU work at once (ingestgate.go)

	rulesMu sync.Mutex              // serializes rule changes
	routeMu sync.RWMutex            // held for reading by appends, for writing by target changes
	api     map[string][]rules.Rule // rules set through the API; nil slice = deleted

	// appendFn is log.Append; tests replace it to inject errors that a
	// real disk gives rarely (ENOSPC).
	appendFn func(context.Context, ...*wal.Entry) (uint64, error)
	live     live // watchers and lag history (watch.go, statuspage.go)

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	closing    atomic.Bool        // set by Close: Publish answers ErrClosed
	abort      context.Context    // ended by Close at its deadline
	abortSends context.CancelFunc // cancels every send in flight
	closeErr   error

	cluster *cluster // nil unless relay.log is "jetstream" (lanes.go)
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
	opts.Logger = lg
	l, err := openLog(cfg, opts)
	if err != nil {
		return nil, err
	}
	r := &Relay{
		cfg: cfg, lg: lg, log: l, file: cfg.Buckets,
		api: map[string][]rules.Rule{}, done: make(chan struct{}),
		appendFn: l.Append,
	}
	r.abort, r.abortSends = context.WithCancel(context.Background())
	r.eng = delivery.New(l, delivery.Options{
		MinBackoff:  duration(cfg.Relay.MinBackoff, delivery.DefaultMinBackoff),
		MaxBackoff:  duration(cfg.Relay.MaxBackoff, delivery.DefaultMaxBackoff),
		MaxAttempts: cfg.Relay.MaxAttempts,
		Logger:      lg,
		OnGone:      r.keepGonePause,
	})
	fail := func(err error) (*Relay, error) {
		l.Close()
		return nil, err
	}
	enabled := map[string]bool{}
	if cl, ok := l.(*clusterLog); ok {
		if err := r.openCluster(cl, opts, enabled); err != nil {
			return fail(err)
		}
	}
	// The file's targets, as targets.json (targets set through the API)
	// overrides and extends them. On a cluster log openCluster runs them
	// as lanes.
	var tcs []TargetConfig
	if r.cluster == nil {
		if tcs, err = r.plannedTargets(cfg); err != nil {
			return fail(err)
		}
	}
	var fromStart []string
	for _, tc := range tcs {
		if !tc.Enabled {
			continue
		}
		if _, ok := l.Cursor(tc.ARN); !ok && tc.StartFrom == StartFromOldest {
			fromStart = append(fromStart, tc.ARN) // retention.go
		}
		if err := r.startTarget(tc); err != nil {
			return fail(err)
		}
		enabled[tc.ARN] = true
	}
	extra := make([]string, 0, len(opts.Targets))
	for arn := range opts.Targets {
		extra = append(extra, arn)
	}
	sort.Strings(extra)
	for _, arn := range extra {
		if r.cluster != nil {
			break // added by openCluster
		}
		if _, err := rules.ParseARN(arn); err != nil {
			return fail(err)
		}
		if enabled[arn] {
			return fail(fmt.Errorf("relay: target %s is both configured and given in Options", arn))
		}
		if err := r.eng.Add(delivery.Spec{ID: arn, Target: r.abortable(opts.Targets[arn])}); err != nil {
			return fail(err)
		}
		enabled[arn] = true
		r.tgt.options[arn] = true
	}
	r.tgt.set.Store(newTargetSet(enabled))
	if r.cluster == nil { // the cluster's are loaded by openCluster
		if err := r.loadAPIRules(); err != nil {
			return fail(err)
		}
	}
	r.logRuleOverrides() // rules_source.go
	r.rules = rules.NewSet(r.effectiveRules())
	for _, arn := range fromStart {
		if _, err := r.startFromOldest(context.Background(), arn); err != nil {
			return fail(err)
		}
	}
	if r.cluster == nil { // the cluster log has no pause (operate.go)
		if err := r.loadPaused(); err != nil {
			return fail(err)
		}
	}
	r.warnStale()
	if len(r.ARNs()) == 0 {
		lg.Warn("no target is enabled: events are accepted and dropped until a target is enabled in the notify section")
	}
	r.gate = newIngestGate(cfg.Relay.IngestConcurrency)
	r.metrics = newMetrics(r)
	r.metrics.reg.MustRegister(newRetainedCollector(r)) // retention.go
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.eng.Run(ctx)
	}()
	go r.governIngest(ctx) // ingestgate.go
	if r.cluster != nil {
		r.cluster.start(ctx)
	}
	return r, nil
}

// warnStale logs cursors of targets that are no longer configured: the log
// keeps their pending events.
func (r *Relay) warnStale() {
	for t := range r.log.Cursors() {
		if !r.isEnabled(t) {
			var n int64
			if ll, ok := r.log.(limitLog); ok {
				n, _ = ll.Pending(t)
			}
			if n == 0 {
				// Nothing is kept for it: nothing to warn about.
				r.lg.Info("a target with a cursor in the log is not configured or not enabled; nothing is pending for it", "target", t)
				continue
			}
			r.lg.Warn("a target with a cursor in the log is not configured or not enabled; its pending events are kept until it is enabled again or released (relay release)", "target", t, "pending", n)
		}
	}
}

// ARNs returns the ARNs of the enabled targets, sorted.
func (r *Relay) ARNs() []string { return append([]string(nil), r.tgt.set.Load().arns...) }

// Log returns the relay's write-ahead log (for inspection and metrics),
// nil when it runs on the cluster log (see ClusterLog).
func (r *Relay) Log() *wal.Log {
	l, _ := r.log.(*wal.Log)
	return l
}

// Done returns a channel that is closed when the relay stops accepting
// events because its log failed: a write or fsync error stops the log
// (fail-stop, see wal.ErrFailed), since the kernel may have dropped pages it
// could not write. From then on Publish fails and POST /v1/events answers
// 503; the daemon exits. Close does not close the channel.
func (r *Relay) Done() <-chan struct{} { return r.log.Failed() }

// Err returns nil while the relay accepts events, or, once Done is closed,
// the error that stopped its log (wrapping wal.ErrFailed; it names the file).
func (r *Relay) Err() error {
	select {
	case <-r.log.Failed():
		return r.log.Health()
	default:
		return nil
	}
}

// Stats returns per-target delivery statistics.
func (r *Relay) Stats() []delivery.Stats { return r.eng.Stats() }

// Publish validates records, routes each by its bucket's rules and appends
// them to the log. It returns once they are durable. A record no rule
// selects is accepted and dropped (as an object store does without a
// notification configuration). A record that cannot be routed fails the
// whole call with a *RecordError (wrapping ErrInvalid) and nothing is
// appended. Once the log has failed (see Done) every call fails with an
// error wrapping wal.ErrFailed. A call waits its turn among
// relay.ingestConcurrency (ingestgate.go) before it encodes; if ctx ends
// first, nothing is appended and the error wraps ctx's.
func (r *Relay) Publish(ctx context.Context, records ...event.Record) error {
	b := r.newBatch(len(records))
	defer b.release()
	if want := 1024 * len(records); cap(b.buf) < want {
		// A new batch (the pool drops batches at garbage collections):
		// room for records of about 1 KiB, rather than growing by copies.
		b.buf = make([]byte, 0, want)
	}
	if err := r.gate.enter(ctx); err != nil {
		return err
	}
	for i := range records {
		start := len(b.buf)
		b.buf = records[i].AppendJSON(b.buf)
		if err := b.add(i, &records[i], b.buf[start:len(b.buf):len(b.buf)]); err != nil {
			r.gate.leave()
			return err
		}
	}
	r.gate.leave() // the wait for the fsync is outside the gate
	_, err := b.append(ctx)
	return err
}

// PublishJSON is Publish for records already encoded as JSON, such as
// those an object store's webhook posts: the bytes are stored and delivered
// as they are (pretty-printed records are compacted), so fields the relay
// does not model survive. Each record must be a JSON object nested at most
// MaxJSONDepth levels, valid UTF-8, whose routing fields (eventName,
// eventTime, s3.bucket.name, s3.object.key: strings; s3.object.size: a
// non-negative integer) have the right types and appear once. It returns
// how many records were accepted.
func (r *Relay) PublishJSON(ctx context.Context, raws ...json.RawMessage) (int, error) {
	b := r.newBatch(len(raws))
	defer b.release()
	if err := r.gate.enter(ctx); err != nil {
		return 0, err
	}
	for i, raw := range raws {
		_, err := b.sc.scan(raw, recordNode, func(_ int, raw []byte, f *recordFields) error {
			return b.addJSON(i, raw, f)
		})
		var se *scanError
		if errors.As(err, &se) {
			r.gate.leave()
			return 0, &RecordError{Index: i, Field: se.field, Msg: se.msg}
		}
		if err != nil {
			r.gate.leave()
			return 0, err
		}
	}
	r.gate.leave() // the wait for the fsync is outside the gate
	return b.append(ctx)
}

// publishBody publishes the records of a POST /v1/events body, read in one
// pass, as b's records. Errors outside any record are *scanError with
// record -1.
func (b *batch) publishBody(ctx context.Context, body []byte) (int, error) {
	g := b.r.gate
	if err := g.enter(ctx); err != nil {
		return 0, err
	}
	seen, err := b.sc.scan(body, bodyNode, b.onJSON)
	g.leave() // the wait for the fsync is outside the gate
	var se *scanError
	if errors.As(err, &se) && se.record >= 0 {
		return 0, &RecordError{Index: se.record, Field: se.field, Msg: se.msg}
	}
	if err != nil {
		return 0, err
	}
	if seen&1 == 0 {
		return 0, &scanError{record: -1, msg: `the body has no "Records" array`}
	}
	return b.append(ctx)
}

// RecordError is the error, wrapping ErrInvalid, for a record that Publish,
// PublishJSON or POST /v1/events refused. Records are numbered from 0 in
// the order given (the index in the body's "Records" array).
type RecordError struct {
	// Index is the record's position, from 0.
	Index int
	// Field is the JSON path of the offending field inside the record
	// ("s3.object.key"); empty when the record as a whole is wrong.
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *RecordError) Error() string { return "relay: " + e.Text() }

// Text is the error without the package prefix, as POST /v1/events
// answers it.
func (e *RecordError) Text() string {
	s := fmt.Sprintf("record %d (numbered from 0): ", e.Index)
	if e.Field != "" {
		s += e.Field + " "
	}
	return s + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *RecordError) Is(target error) bool { return target == ErrInvalid }

// batch gathers the validated, routed records of one call for one Append.
// Batches are pooled (batchpool.go): their slices are reused, call after
// call.
type batch struct {
	r       *Relay
	start   time.Time
	n       int
	entries []*wal.Entry // pointers into slab, made by append
	slab    []wal.Entry  // the routed records
	keys    []byte       // the entries' "bucket/object" keys, one after the other
	keyEnd  []int        // where each entry's key ends in keys
	buf     []byte       // Publish's encoded records, or the POST body
	scratch []byte       // addJSON's unquoted fields
	targets []string     // the last record's targets, shared while they repeat
	match   []string
	rec     event.Record                           // scratch for JSON records
	sc      scanner                                // reads POST bodies and PublishJSON's records
	onJSON  func(int, []byte, *recordFields) error // addJSON, bound once per pooled batch
	watch   bool                                   // someone watches: keep every record for them
	set     *targetSet                             // the targets the records were routed among
	live    []liveEvent
}

// addJSON adds a record scanned from JSON: its routing fields are checked
// by the scanner, their values by event.Record.Validate. A known event
// name is the event package's constant; the time, bucket and key share one
// string: one allocation per record.
func (b *batch) addJSON(i int, raw []byte, f *recordFields) error {
	rec := &b.rec
	rec.EventName = f.name(slotEventName)
	var ends [3]int
	b.scratch = b.scratch[:0]
	for k, slot := range [3]int{slotEventTime, slotBucket, slotKey} {
		b.scratch = f.appendStr(b.scratch, slot)
		ends[k] = len(b.scratch)
	}
	// The fields are strings over scratch, which the next record writes
	// over: nothing keeps them past add (it copies what watchers keep, and
	// the entry's key goes to b.keys), so a record allocates nothing.
	all := unsafe.String(unsafe.SliceData(b.scratch), len(b.scratch))
	rec.EventTime, rec.S3.Bucket.Name, rec.S3.Object.Key = all[:ends[0]], all[ends[0]:ends[1]], all[ends[1]:]
	if f.newline {
		raw = event.Normalize(raw)
	}
	return b.add(i, rec, raw)
}

// add validates rec (the i-th record of the call, stored as raw) and
// routes it.
func (b *batch) add(i int, rec *event.Record, raw []byte) error {
	at, err := rec.ValidateTime()
	if err != nil {
		var fe *event.FieldError
		if errors.As(err, &fe) {
			return &RecordError{Index: i, Field: fe.Field, Msg: fe.Msg}
		}
		return &RecordError{Index: i, Msg: strings.TrimPrefix(err.Error(), "event: ")}
	}
	b.n++
	r := b.r
	bucket, obj := rec.S3.Bucket.Name, rec.ObjectKey() // read once
	if b.watch {
		// Copies: addJSON's strings are reused by the next record.
		b.live = append(b.live, liveEvent{bucket: strings.Clone(bucket), key: strings.Clone(obj), name: rec.EventName, raw: raw})
	}
	// Rules with object filters (size, content type, metadata, tags) read
	// the record; the others look at the key alone.
	b.match = r.rules.MatchRecord(b.match, bucket, obj, rec.EventName, raw)
	targets := b.route()
	if len(targets) == 0 {
		return nil
	}
	b.keys = append(append(append(b.keys, bucket...), '/'), obj...)
	b.keyEnd = append(b.keyEnd, len(b.keys))
	b.slab = append(b.slab, wal.Entry{
		Targets:   targets,
		Name:      string(rec.EventName),
		EventTime: at,
		Data:      raw,
	})
	return nil
}

// route returns the enabled targets of b.match. Records of a call mostly
// go where the previous one went: that slice is shared then (the log never
// changes an entry's targets).
func (b *batch) route() []string {
	n := 0
	for _, a := range b.match {
		if b.set.enabled[a] {
			if n >= len(b.targets) || b.targets[n] != a {
				n = -1
				break
			}
			n++
		}
	}
	if n == len(b.targets) && n > 0 {
		return b.targets
	}
	var targets []string
	for _, a := range b.match {
		if b.set.enabled[a] {
			targets = append(targets, a)
		}
	}
	b.targets = targets
	return targets
}

// append appends the batch and returns how many records were accepted.
func (b *batch) append(ctx context.Context) (int, error) {
	r := b.r
	if r.closing.Load() {
		return 0, fmt.Errorf("relay: publish: %w", ErrClosed)
	}
	if err := r.Err(); err != nil {
		return 0, err
	}
	// Target changes wait for appends in flight, so a removed target gets
	// nothing once its removal returns (runtime_targets.go).
	b.seal()
	r.routeMu.RLock()
	entries := b.reroute()
	if len(entries) > 0 {
		if _, err := r.appendFn(ctx, entries...); err != nil {
			r.routeMu.RUnlock()
			return 0, err
		}
	}
	r.routeMu.RUnlock()
	r.publishLive(b.live) // watchers see what was accepted, once it is durable
	r.metrics.observeIngest(b.n, time.Since(b.start))
	r.lg.Debug("events logged", "records", b.n, "routed", len(b.entries), slog.Duration("duration", time.Since(b.start).Round(time.Microsecond)))
	return b.n, nil
}

// Bucket rules.

// BucketRules returns bucket's effective rules.
func (r *Relay) BucketRules(bucket string) []rules.Rule { return r.rules.Bucket(bucket) }

// SetBucketRules replaces bucket's rules, as an S3 PUT of a bucket
// notification configuration does. The bucket name must be a valid S3
// bucket name (rules.CheckBucketName), every rule's target must be
// enabled, and no two rules may select the same events for the same target
// with the same filters (rules.CheckDuplicates).
// The rules are persisted in the data directory and override the config
// file's rules for that bucket; an empty list removes every rule.
func (r *Relay) SetBucketRules(bucket string, rs []rules.Rule) error {
	if err := rules.CheckBucketName(bucket); err != nil {
		return err
	}
	norm := make([]rules.Rule, 0, len(rs))
	for _, x := range rs {
		n, err := x.Normalize()
		if err != nil {
			return err
		}
		if !r.isEnabled(n.ARN) {
			return fmt.Errorf("%w: %s (enabled targets: %v)", ErrUnknownTarget, n.ARN, r.ARNs())
		}
		norm = append(norm, n)
	}
	if err := rules.CheckDuplicates(norm); err != nil {
		return err
	}
	r.rulesMu.Lock()
	defer r.rulesMu.Unlock()
	next := make(map[string][]rules.Rule, len(r.api)+1)
	for b, x := range r.api {
		next[b] = x
	}
	next[bucket] = norm
	if r.cluster != nil {
		if err := r.cluster.saveRules(bucket, norm); err != nil {
			return err
		}
	} else if err := r.saveAPIRules(next); err != nil {
		return err
	}
	r.api = next
	r.rules.Replace(r.effectiveRules())
	return nil
}

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
			if !r.isEnabled(x.ARN) {
				// Rules saved through the API outlive the configuration;
				// refusing to start over one would stop every target.
				r.lg.Warn("a bucket rule set through the API names a target that is not enabled; events it selects are not delivered to it", "bucket", b, "target", x.ARN, "file", r.cfg.DataPath(rulesFile))
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
