package jslog

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/delivery"
	"github.com/bucketrelay/bucketrelay/internal/logframe"
	"github.com/bucketrelay/bucketrelay/wal"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors returned by the log. A full stream returns an error wrapping
// wal.ErrFull, a group commit too large for one message wal.ErrTooLarge,
// a damaged message wal.ErrCorrupt, so the relay answers them as it does
// for its embedded log.
var (
	// ErrUnavailable is returned by Append when the stream did not
	// acknowledge the records before the context ended: no quorum, no
	// leader, or no connection. The records may still have been stored
	// (the publish was in flight); a retry may then duplicate them, never
	// lose them.
	ErrUnavailable = errors.New("jslog: stream unavailable")
	// ErrClosed is returned by calls on a closed log.
	ErrClosed = errors.New("jslog: log is closed")
)

// Options tunes a Log. The zero value is usable.
type Options struct {
	// CursorSyncInterval is how long a cursor move or quarantine entry may
	// wait before it is written to the KV bucket; 0 means
	// DefaultCursorSyncInterval.
	CursorSyncInterval time.Duration
	// AttemptTimeout bounds one publish attempt; a group commit is retried
	// (same message ID) while any of its callers' contexts lives. 0 means
	// DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// MaxInFlight bounds the group commits published and not yet
	// acknowledged; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// CacheBytes bounds the decoded messages kept for reading; 0 means
	// DefaultCacheBytes.
	CacheBytes int64
	// Name is the connection name the servers show; "" means
	// "bucketrelay".
	Name string
	// Compression is the codec new messages' records are compressed with,
	// as in wal.Options; "" means wal.DefaultCompression (s2). Messages
	// already stored keep theirs.
	Compression wal.Compression
	// Logger receives the log's messages; nil means slog.Default().
	Logger *slog.Logger
}

// meta is what the log keeps in memory about each message of the stream.
type meta struct {
	seq   uint64 // stream sequence
	count uint32 // records
	set   uint32 // index into Log.sets
}

func (m meta) last() uint64 {
	if m.count == 0 {
		return Seq(m.seq, 0)
	}
	return Seq(m.seq, int(m.count)-1)
}

type kvCursor struct {
	next uint64
	rev  uint64
}

type appendReq struct {
	ctx     context.Context
	entries []*wal.Entry
	size    int
	first   uint64
	stream  uint64
	done    chan error
}

// Log is a relay log on a JetStream stream. Its methods are safe for
// concurrent use. Several processes may open the same stream: every one
// may append, and each sees every other's records.
type Log struct {
	cfg     Config
	opts    Options
	lg      *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	codec   logframe.Codec // new messages' (Options.Compression)
	curKV   jetstream.KeyValue
	quarKV  jetstream.KeyValue

	producer   string // message ID prefix, unique per Open
	msgN       atomic.Uint64
	maxPayload int
	replicas   int // the stream's, for the buckets the log creates

	reqs    chan *appendReq
	closing chan struct{} // closed by Close: no more appends
	abort   chan struct{} // closed by Close after a grace: stop retrying
	bgCtx   context.Context
	bgStop  context.CancelFunc
	batchWG sync.WaitGroup
	bgWG    sync.WaitGroup
	sendMu  sync.RWMutex
	tailMu  sync.Mutex
	tail    jetstream.ConsumeContext
	flushed chan struct{} // poked to flush at once

	mu         sync.Mutex
	index      []meta
	sets       [][]string
	setIDs     map[string]uint32
	lastStream uint64 // last stream sequence the index holds
	maxAcked   uint64 // highest stream sequence this process's appends got
	events     int64  // records in the indexed messages
	bytes      int64  // the stream's stored bytes at the last look
	lagging    bool   // the index fell behind maxAcked: Append stops waiting for it
	openSeq    uint64 // stream's last sequence at Open
	caughtUp   chan struct{}
	isCaught   bool
	routed     map[string]uint64
	appended   chan struct{}
	indexed    chan struct{} // closed and replaced whenever the index grows
	cursors    map[string]uint64
	durable    map[string]kvCursor
	dirty      map[string]uint64
	quar       []wal.QuarantineEntry
	reclaim    bool // cursors moved since the last reclamation
	closed     bool
	health     error
	warnings   []string

	cache      frameCache
	reclaimOut outage // purges failing: logged once per outage
}

var _ delivery.Log = (*Log)(nil)

// Open connects to cfg.Servers, creates the stream and the cursor and
// quarantine buckets if they do not exist, loads the cursors and follows
// the stream. It checks what a client can see of the stream's durability
// and logs a warning for each way it falls short (see Warnings).
func Open(ctx context.Context, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := opts.Compression.Validate(); err != nil {
		return nil, fmt.Errorf("jslog: %w", err)
	}
	if opts.CursorSyncInterval <= 0 {
		opts.CursorSyncInterval = DefaultCursorSyncInterval
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.Name == "" {
		opts.Name = "bucketrelay"
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	l := &Log{
		cfg: cfg, opts: opts, lg: lg.With("stream", cfg.Stream),
		subject:  cfg.Stream + ".records",
		producer: producerID(),
		reqs:     make(chan *appendReq, 1024),
		closing:  make(chan struct{}),
		abort:    make(chan struct{}),
		flushed:  make(chan struct{}, 1),
		setIDs:   map[string]uint32{},
		caughtUp: make(chan struct{}),
		routed:   map[string]uint64{},
		appended: make(chan struct{}),
		indexed:  make(chan struct{}),
		cursors:  map[string]uint64{},
		durable:  map[string]kvCursor{},
		dirty:    map[string]uint64{},
	}
	l.codec, _ = logframe.ParseCodec(string(opts.Compression)) // validated above
	l.cache.init(opts.CacheBytes)
	nopts, err := cfg.natsOptions(opts.Name)
	if err != nil {
		return nil, err
	}
	nopts = append(nopts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.lg.Warn("jslog: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { l.lg.Info("jslog: reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
	)
	nc, err := nats.Connect(strings.Join(cfg.Servers, ","), nopts...)
	if err != nil {
		return nil, fmt.Errorf("jslog: connecting to %s: %w", redact(cfg.Servers), err)
	}
	l.nc = nc
	l.maxPayload = int(nc.MaxPayload())
	if err := l.open(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) open(ctx context.Context) error {
	js, err := jetstream.New(l.nc)
	if err != nil {
		return fmt.Errorf("jslog: %w", err)
	}
	l.js = js
	// A stream another process has just created may answer "not found"
	// for a moment while its assignment spreads and its replicas elect a
	// leader (seen with three relays starting together): look again.
	var info *jetstream.StreamInfo
	var created bool
	for {
		info, created, err = l.openStream(ctx, js)
		if !errors.Is(err, jetstream.ErrStreamNotFound) || ctx.Err() != nil {
			break
		}
		l.lg.Info("jslog: the stream is not found yet; looking again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	l.replicas = info.Config.Replicas
	l.warnings = check(info, l.cfg, l.subject, created)
	for _, w := range l.warnings {
		l.lg.Warn("jslog: " + w)
	}
	l.lg.Info("jslog: the servers' sync_interval is not visible to clients: with sync_interval always an acknowledged record is on the disk of a majority of replicas; with the default (2m) it is only in their memory and a coordinated power loss can lose it",
		"servers", redact(l.cfg.Servers), "replicas", info.Config.Replicas)
	if info.Config.MaxMsgSize > 0 && int(info.Config.MaxMsgSize) < l.maxPayload {
		l.maxPayload = int(info.Config.MaxMsgSize)
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&l.curKV, l.cfg.Stream + "_cursors"}, {&l.quarKV, l.cfg.Stream + "_quarantine"}} {
		get := func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, b.name) }
		kv, err := retry(ctx, get)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = retry(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
				return js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
					Bucket: b.name, History: 1, Storage: jetstream.FileStorage, Replicas: l.replicas,
				})
			})
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = retry(ctx, get)
			}
		}
		if err != nil {
			return fmt.Errorf("jslog: bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}

	l.bgCtx, l.bgStop = context.WithCancel(context.Background())
	// Cursors first, so that Register sees every target's cursor. The
	// watch lives as long as the log, not as Open's ctx.
	w, err := retry(ctx, func(context.Context) (jetstream.KeyWatcher, error) { return l.curKV.WatchAll(l.bgCtx) })
	if err != nil {
		l.bgStop()
		return fmt.Errorf("jslog: watching cursors: %w", err)
	}
	if err := l.loadCursors(ctx, w); err != nil {
		_ = w.Stop()
		l.bgStop()
		return err
	}
	l.bgWG.Add(1)
	go l.watchCursors(w)

	l.openSeq = info.State.LastSeq
	l.bytes = int64(info.State.Bytes)
	if info.State.Msgs == 0 {
		l.lastStream = info.State.LastSeq
		l.markCaughtUp()
	}
	if _, err := retry(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, l.follow(ctx, 0) }); err != nil {
		l.bgStop()
		return fmt.Errorf("jslog: following stream %s: %w", l.cfg.Stream, err)
	}
	select {
	case <-l.caughtUp:
	case <-ctx.Done():
		l.stopTail()
		l.bgStop()
		return fmt.Errorf("jslog: reading the index of stream %s: %w", l.cfg.Stream, ctx.Err())
	}
	l.batchWG.Add(1)
	go l.batch()
	l.bgWG.Add(2)
	go l.flushLoop()
	go l.watchStream()
	return nil
}

// openStream gets the stream, creating it if it does not exist, and its
// info; created reports that this call created it.
func (l *Log) openStream(ctx context.Context, js jetstream.JetStream) (info *jetstream.StreamInfo, created bool, err error) {
	l.stream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, l.cfg.Stream) })
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		created = true
		l.stream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) {
			return js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        l.cfg.Stream,
				Description: "bucketrelay event log",
				Subjects:    []string{l.subject},
				Retention:   jetstream.LimitsPolicy,
				Discard:     jetstream.DiscardNew,
				MaxBytes:    l.cfg.MaxBytes,
				MaxMsgs:     l.cfg.MaxMessages,
				Storage:     jetstream.FileStorage,
				Replicas:    l.cfg.Replicas,
				Duplicates:  2 * time.Minute,
			})
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another relay created it
			l.stream, err = retry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, l.cfg.Stream) })
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("jslog: stream %s: %w", l.cfg.Stream, err)
	}
	info, err = retry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) { return l.stream.Info(ctx) })
	if err != nil {
		return nil, false, fmt.Errorf("jslog: stream %s: %w", l.cfg.Stream, err)
	}
	return info, created, nil
}

// retry calls fn with a context of at most 5 s until it succeeds, gets a
// definite answer or ctx ends: a stream or bucket without a leader (an
// election, servers restarting) does not answer at all, and a single
// request would wait for all of ctx although a leader is back in seconds.
func retry[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || definite(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// definite reports whether err is an answer that asking again would not
// change: not found, already exists, a request refused.
func definite(err error) bool {
	for _, e := range []error{jetstream.ErrStreamNotFound, jetstream.ErrStreamNameAlreadyInUse, jetstream.ErrBucketNotFound, jetstream.ErrBucketExists} {
		if errors.Is(err, e) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	// 10005: no suitable peers for placement, while a restarted server
	// is not yet known to be online.
	return errors.As(err, &apiErr) && apiErr.Code < 500 && apiErr.ErrorCode != 10005
}

// follow (re)starts the headers-only ordered consumer that feeds the
// index, from stream sequence from (0: the first).
func (l *Log) follow(ctx context.Context, from uint64) error {
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: true, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	cons, err := l.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	cc, err := cons.Consume(l.onIndex)
	if err != nil {
		return err
	}
	l.tailMu.Lock()
	old := l.tail
	l.tail = cc
	l.tailMu.Unlock()
	if old != nil {
		old.Stop()
	}
	return nil
}

func (l *Log) stopTail() {
	l.tailMu.Lock()
	defer l.tailMu.Unlock()
	if l.tail != nil {
		l.tail.Stop()
		l.tail = nil
	}
}

// check returns what falls short in the stream's configuration, as a
// client sees it.
func check(info *jetstream.StreamInfo, cfg Config, subject string, created bool) []string {
	var w []string
	c := info.Config
	if c.Replicas < 3 {
		w = append(w, fmt.Sprintf("stream %s has %d replica(s): losing one server's disk loses acknowledged events; use 3", c.Name, c.Replicas))
	}
	if c.Replicas != cfg.Replicas {
		w = append(w, fmt.Sprintf("stream %s has %d replica(s), the configuration asks for %d (an existing stream is not changed)", c.Name, c.Replicas, cfg.Replicas))
	}
	if c.Storage != jetstream.FileStorage {
		w = append(w, fmt.Sprintf("stream %s is kept in memory: a restart of its servers loses every event", c.Name))
	}
	if c.Discard != jetstream.DiscardNew {
		w = append(w, fmt.Sprintf("stream %s discards old messages when full: undelivered events would be dropped; use discard new", c.Name))
	}
	if c.MaxBytes <= 0 && c.MaxMsgs <= 0 {
		w = append(w, fmt.Sprintf("stream %s has no max bytes or messages: the relay cannot push back before the servers' disks fill", c.Name))
	}
	if c.Retention != jetstream.LimitsPolicy {
		w = append(w, fmt.Sprintf("stream %s has retention %s: messages may go before every target delivered them; use limits", c.Name, c.Retention))
	}
	if c.Duplicates < time.Minute {
		w = append(w, fmt.Sprintf("stream %s keeps message IDs for %s: a retried publish after that is stored twice", c.Name, c.Duplicates))
	}
	found := false
	for _, s := range c.Subjects {
		if s == subject {
			found = true
		}
	}
	if !found {
		w = append(w, fmt.Sprintf("stream %s does not take subject %s: appends will fail", c.Name, subject))
	}
	if cl := info.Cluster; cl != nil && !created { // a new stream's replicas are still catching up
		if cl.Leader == "" {
			w = append(w, fmt.Sprintf("stream %s has no leader now: appends wait for one", c.Name))
		}
		for _, p := range cl.Replicas {
			if p.Offline || !p.Current {
				w = append(w, fmt.Sprintf("stream %s replica %s is offline or behind", c.Name, p.Name))
			}
		}
	}
	return w
}

// Warnings returns what Open found the stream cannot promise: fewer than
// three replicas, memory storage, discard old, no bounds. The servers'
// sync_interval is not visible to a client and never appears here; see
// the package documentation.
func (l *Log) Warnings() []string { return append([]string(nil), l.warnings...) }

// Health returns nil while the last publish and cursor write succeeded,
// or the error of the last one that failed.
func (l *Log) Health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.health
}

func (l *Log) setHealth(err error) {
	l.mu.Lock()
	l.health = err
	l.mu.Unlock()
}

func (l *Log) markCaughtUp() {
	if !l.isCaught {
		l.isCaught = true
		close(l.caughtUp)
	}
}

// setID interns a sorted target set. Called with mu held.
func (l *Log) setID(targets []string) uint32 {
	k := strings.Join(targets, "\x00")
	if id, ok := l.setIDs[k]; ok {
		return id
	}
	id := uint32(len(l.sets))
	l.sets = append(l.sets, targets)
	l.setIDs[k] = id
	return id
}

// onIndex adds one message of the stream (headers only) to the index.
func (l *Log) onIndex(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	seq := md.Sequence.Stream
	h := m.Headers()
	count, routed, ok := parseIndexHeaders(h.Get(hdrCount), h.Get(hdrTargets))
	if !ok {
		l.lg.Warn("jslog: message without relay headers in the stream; skipped", "streamSeq", seq, "subject", m.Subject())
	}
	targets := make([]string, 0, len(routed))
	for t := range routed {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq <= l.lastStream {
		return // redelivered after a consumer reset
	}
	l.index = append(l.index, meta{seq: seq, count: uint32(count), set: l.setID(targets)})
	l.events += int64(count)
	l.lastStream = seq
	if seq > l.openSeq {
		for t, n := range routed {
			l.routed[t] += uint64(n)
		}
	}
	if l.lagging && l.lastStream >= l.maxAcked {
		l.lagging = false
		l.lg.Info("jslog: the index caught up with this process's appends")
	}
	close(l.indexed)
	l.indexed = make(chan struct{})
	if l.isCaught {
		close(l.appended)
		l.appended = make(chan struct{})
	}
	if seq >= l.openSeq || md.NumPending == 0 {
		l.markCaughtUp()
	}
}

// Append logs entries and returns the sequence of the first one once the
// stream acknowledged them: with R3, a majority of its replicas hold them.
// Concurrent appends share one message (group commit). Entries are
// numbered in the order given, consecutively within one message; entries
// too many or too large for one message (the servers' max_payload) are
// split over several, so an error may follow the storing of some of them.
//
// A full stream is retried until ctx ends, then an error wrapping
// wal.ErrFull is returned. A stream without quorum is retried until ctx
// ends, then an error wrapping ErrUnavailable is returned. Append never
// returns nil for a record the stream did not acknowledge.
func (l *Log) Append(ctx context.Context, entries ...*wal.Entry) (uint64, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	budget := l.budget()
	var reqs []*appendReq
	cur := &appendReq{ctx: ctx, done: make(chan error, 1)}
	for _, e := range entries {
		s := entrySize(e)
		if len(cur.entries) > 0 && (cur.size+s > budget || len(cur.entries) == MaxRecordsPerMessage) {
			reqs = append(reqs, cur)
			cur = &appendReq{ctx: ctx, done: make(chan error, 1)}
		}
		cur.entries = append(cur.entries, e)
		cur.size += s
	}
	reqs = append(reqs, cur)

	l.sendMu.RLock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		l.sendMu.RUnlock()
		return 0, ErrClosed
	}
	queued := 0
	var qerr error
	for _, r := range reqs {
		select {
		case l.reqs <- r:
			queued++
			continue
		case <-ctx.Done():
			qerr = fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
		break
	}
	l.sendMu.RUnlock()
	var err error
	for _, r := range reqs[:queued] {
		if e := <-r.done; e != nil && err == nil {
			err = e
		}
	}
	if err == nil {
		err = qerr
	}
	if err != nil {
		return 0, err
	}
	// Read your writes: wait (briefly) until the index holds the last
	// message, so that Read and Routed see these records at once.
	l.waitIndexed(reqs[len(reqs)-1].stream, 2*time.Second)
	return reqs[0].first, nil
}

// budget is the record bytes one message may carry before compression.
func (l *Log) budget() int {
	return l.maxPayload - l.maxPayload/8 - 4096
}

// waitIndexed waits up to d for the index to hold streamSeq. Once a wait
// times out the log stops waiting (the records are acknowledged; only
// their visibility to this process's readers is late) until the index
// catches up, so that a lagging index never slows every Append.
func (l *Log) waitIndexed(streamSeq uint64, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		l.mu.Lock()
		ok := l.lastStream >= streamSeq || l.lagging
		ch := l.indexed
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			l.mu.Lock()
			if !l.lagging && l.lastStream < streamSeq {
				l.lagging = true
				l.lg.Warn("jslog: the index lags behind this process's appends; appends stop waiting for it", "indexed", l.lastStream, "acknowledged", streamSeq)
			}
			l.mu.Unlock()
			return
		}
	}
}

// batch gathers queued appends into messages and publishes up to
// MaxInFlight of them at once. Messages in flight together hold appends
// that were themselves concurrent, so their order is not defined anyway; an
// Append that returned before another was called is always stored before
// it.
func (l *Log) batch() {
	defer l.batchWG.Done()
	budget := l.budget()
	inflight := make(chan struct{}, l.opts.MaxInFlight)
	var carry *appendReq
	for {
		r := carry
		carry = nil
		if r == nil {
			select {
			case r = <-l.reqs:
			case <-l.closing:
				select {
				case r = <-l.reqs:
				default:
					return
				}
			}
		}
		reqs := []*appendReq{r}
		size, n := r.size, len(r.entries)
	gather:
		for {
			select {
			case r2 := <-l.reqs:
				if size+r2.size > budget || n+len(r2.entries) > MaxRecordsPerMessage {
					carry = r2
					break gather
				}
				reqs = append(reqs, r2)
				size += r2.size
				n += len(r2.entries)
			default:
				break gather
			}
		}
		inflight <- struct{}{}
		l.batchWG.Add(1)
		go func() {
			defer l.batchWG.Done()
			l.publish(reqs)
			<-inflight
		}()
	}
}

// publish stores reqs' entries as one message (or, if the encoded frame
// exceeds the payload limit, as halves) and completes them.
func (l *Log) publish(reqs []*appendReq) {
	var entries []*wal.Entry
	for _, r := range reqs {
		entries = append(entries, r.entries...)
	}
	body, count, targets := encodeFrame(l.codec, time.Now(), entries)
	if len(body)+len(targets)+256 > l.maxPayload {
		if len(reqs) > 1 {
			l.publish(reqs[:len(reqs)/2])
			l.publish(reqs[len(reqs)/2:])
			return
		}
		reqs[0].done <- fmt.Errorf("jslog: %w: %d records make a %d-byte message, the servers take %d", wal.ErrTooLarge, len(entries), len(body), l.maxPayload)
		return
	}
	msg := &nats.Msg{Subject: l.subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(hdrCount, count)
	if targets != "" {
		msg.Header.Set(hdrTargets, targets)
	}
	id := l.producer + "-" + strconv.FormatUint(l.msgN.Add(1), 10)

	// The message is retried while any caller still waits, and never
	// after Close gave up on it.
	mctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var left atomic.Int32
	left.Store(int32(len(reqs)))
	for _, r := range reqs {
		stop := context.AfterFunc(r.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	go func() {
		select {
		case <-l.abort:
			cancel()
		case <-mctx.Done():
		}
	}()

	backoff := 20 * time.Millisecond
	var lastErr error
	for {
		actx, acancel := context.WithTimeout(mctx, l.opts.AttemptTimeout)
		ack, err := l.js.PublishMsg(actx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(l.cfg.Stream))
		acancel()
		if err == nil {
			if ack.Duplicate {
				l.lg.Debug("jslog: retried message was already stored", "msgID", id, "streamSeq", ack.Sequence)
			}
			l.setHealth(nil)
			l.mu.Lock()
			l.maxAcked = max(l.maxAcked, ack.Sequence)
			l.mu.Unlock()
			off := 0
			for _, r := range reqs {
				r.first = Seq(ack.Sequence, off)
				r.stream = ack.Sequence
				off += len(r.entries)
				r.done <- nil
			}
			return
		}
		switch {
		case mctx.Err() != nil && lastErr != nil:
			// Cancelled mid-attempt: the previous answer says why.
		case mctx.Err() != nil:
			lastErr = fmt.Errorf("%w: stream %s: no acknowledgement", ErrUnavailable, l.cfg.Stream)
		case isFull(err):
			lastErr = fmt.Errorf("jslog: stream %s: %w: %v", l.cfg.Stream, wal.ErrFull, err)
		case isTooLarge(err):
			err = fmt.Errorf("jslog: stream %s: %w: %v", l.cfg.Stream, wal.ErrTooLarge, err)
			for _, r := range reqs {
				r.done <- err
			}
			return
		default:
			lastErr = fmt.Errorf("%w: stream %s: %v", ErrUnavailable, l.cfg.Stream, err)
		}
		l.setHealth(lastErr)
		if mctx.Err() != nil {
			err := fmt.Errorf("%w (message %s)", lastErr, id)
			if ctxErr := firstCtxErr(reqs); ctxErr != nil {
				err = fmt.Errorf("%w: %w", err, ctxErr)
			}
			for _, r := range reqs {
				r.done <- err
			}
			return
		}
		select {
		case <-time.After(backoff):
		case <-mctx.Done():
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func firstCtxErr(reqs []*appendReq) error {
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func apiCode(err error) (jetstream.ErrorCode, string, bool) {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode, apiErr.Description, true
	}
	return 0, "", false
}

// isFull reports whether a publish failed on the stream's limits (discard
// new) or the servers' storage limits.
func isFull(err error) bool {
	code, desc, ok := apiCode(err)
	if !ok {
		return false
	}
	switch code {
	case 10023: // insufficient resources
		return true
	case 10077: // store failed: which store error is in the description
		return strings.Contains(desc, "maximum messages") || strings.Contains(desc, "maximum bytes")
	}
	return false
}

func isTooLarge(err error) bool {
	code, desc, ok := apiCode(err)
	return ok && (code == jetstream.JSErrCodeStreamMessageExceedsMaximum || (code == 10077 && strings.Contains(desc, "too large"))) ||
		errors.Is(err, nats.ErrMaxPayload)
}

// LastSeq returns the sequence of the last record the log has seen, 0 if
// none.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRecord()
}

// lastRecord is called with mu held.
func (l *Log) lastRecord() uint64 {
	if n := len(l.index); n > 0 && l.index[n-1].seq == l.lastStream {
		return l.index[n-1].last()
	}
	if l.lastStream == 0 {
		return 0
	}
	return Seq(l.lastStream, 0)
}

// Routed returns how many records routed to target were committed since
// the log was opened (by any process), and the last committed sequence,
// as of one moment.
//
// For a LaneID it returns the whole target's count: the index does not
// know keys, so a lane's backlog figure is an upper bound.
func (l *Log) Routed(target string) (n, lastSeq uint64) {
	base, _, _ := parseLane(target)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.routed[base], l.lastRecord()
}

// Appended returns a channel closed when the log next sees new records,
// appended by this process or another.
func (l *Log) Appended() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appended
}

// Events returns the records held in the stream, as this process's index
// sees them.
func (l *Log) Events() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events
}

// Bytes returns the stream's stored bytes (compressed frames and headers)
// as of its last look at the stream, at most a few seconds old.
func (l *Log) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// Stream returns the stream's name.
func (l *Log) Stream() string { return l.cfg.Stream }

// Close stops accepting appends, lets queued ones finish (retrying for at
// most a few seconds after Close if the stream is unavailable), writes the
// pending cursor moves and quarantine entries, and disconnects.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.sendMu.Lock()
	close(l.closing)
	l.sendMu.Unlock()
	done := make(chan struct{})
	go func() { l.batchWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(l.abort)
		<-done
	}
	l.bgStop()
	l.bgWG.Wait()
	l.stopTail()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := l.flush(ctx)
	l.nc.Close()
	return err
}

// producerID returns a random prefix for this log's message IDs.
func producerID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// keyOf returns the KV key for target: base64url, since target IDs (ARNs)
// hold characters keys may not.
func keyOf(target string) string { return base64.RawURLEncoding.EncodeToString([]byte(target)) }

func targetOf(key string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err == nil
}

func (l *Log) loadCursors(ctx context.Context, w jetstream.KeyWatcher) error {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("jslog: cursor watch ended")
			}
			if e == nil {
				return nil
			}
			l.onCursor(e)
		case <-ctx.Done():
			return fmt.Errorf("jslog: loading cursors: %w", ctx.Err())
		}
	}
}

func (l *Log) watchCursors(w jetstream.KeyWatcher) {
	defer l.bgWG.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil {
				l.onCursor(e)
			}
		case <-l.bgCtx.Done():
			return
		}
	}
}

// onCursor takes a cursor written by any process.
func (l *Log) onCursor(e jetstream.KeyValueEntry) {
	t, ok := targetOf(e.Key())
	if !ok || e.Operation() != jetstream.KeyValuePut {
		return
	}
	v, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		l.lg.Warn("jslog: unreadable cursor in the bucket", "target", t)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := l.durable[t]; !ok || e.Revision() > d.rev {
		l.durable[t] = kvCursor{next: v, rev: e.Revision()}
		l.reclaim = true
	}
	if v > l.cursors[t] {
		l.cursors[t] = v
	}
}

// Register makes sure target has a cursor, starting it after the last
// record if it is new, and returns it. A new cursor is created in the
// bucket at once (within 5 s); if two processes register a target at the
// same moment, both get the one created first.
func (l *Log) Register(target string) uint64 { return l.register(target, 0) }

// RegisterFrom is Register for a new target whose cursor starts at from
// (if not 0) rather than after the last record: a target whose lanes
// changed starts its new lanes where its old ones were, so the records
// between are not skipped. A target with a cursor keeps it.
func (l *Log) RegisterFrom(target string, from uint64) uint64 { return l.register(target, from) }

func (l *Log) register(target string, from uint64) uint64 {
	l.mu.Lock()
	if c, ok := l.cursors[target]; ok {
		l.mu.Unlock()
		return c
	}
	c := Seq(l.lastStream+1, 0)
	if from > 0 {
		c = from
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rev, err := l.curKV.Create(ctx, keyOf(target), []byte(strconv.FormatUint(c, 10)))
	if err != nil {
		if e, gerr := l.curKV.Get(ctx, keyOf(target)); gerr == nil {
			l.onCursor(e)
		} else {
			l.lg.Warn("jslog: registering a target; the cursor is written later", "target", target, "err", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		if d, ok := l.durable[target]; !ok || rev > d.rev {
			l.durable[target] = kvCursor{next: c, rev: rev}
		}
	}
	if cur, ok := l.cursors[target]; ok {
		return cur
	}
	l.cursors[target] = c
	l.dirty[target] = c
	return c
}

// Cursor returns target's cursor and whether it has one: the furthest of
// this process's moves and what any process committed.
func (l *Log) Cursor(target string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.cursors[target]
	return c, ok
}

// Cursors returns every target's cursor.
func (l *Log) Cursors() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]uint64, len(l.cursors))
	for t, c := range l.cursors {
		m[t] = c
	}
	return m
}

// Advance moves target's cursor to next; it never moves back. The move is
// written to the cursor bucket within CursorSyncInterval (if the stream is
// available). It fails once the log is closed.
func (l *Log) Advance(target string, next uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if next <= l.cursors[target] {
		return nil
	}
	l.cursors[target] = next
	l.dirty[target] = next
	return nil
}

// Quarantine records that target gave up on r for good. The entry is
// written to the quarantine bucket no later than any cursor move made
// after the call.
func (l *Log) Quarantine(target string, r wal.Record, reason string, attempts int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.quar = append(l.quar, wal.QuarantineEntry{
		Target: target, Seq: r.Seq, Error: reason, Attempts: attempts, Time: time.Now().UTC(),
		Key: r.Key, Name: r.Name, Data: append(json.RawMessage(nil), r.Data...),
	})
	return nil
}

// Quarantined returns target's committed quarantine, oldest first.
func (l *Log) Quarantined(target string) ([]wal.QuarantineEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := l.quarKV.WatchFiltered(ctx, []string{keyOf(target) + ".>"})
	if err != nil {
		return nil, fmt.Errorf("jslog: reading quarantine: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []wal.QuarantineEntry
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
				return out, nil
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var q wal.QuarantineEntry
			if err := json.Unmarshal(e.Value(), &q); err != nil {
				return nil, &corruptError{q.Seq, "bad quarantine entry " + e.Key()}
			}
			out = append(out, q)
		case <-ctx.Done():
			return nil, fmt.Errorf("jslog: reading quarantine: %w", ctx.Err())
		}
	}
}

func (l *Log) flushLoop() {
	defer l.bgWG.Done()
	t := time.NewTicker(l.opts.CursorSyncInterval)
	defer t.Stop()
	failing := false // log a failure once, and the recovery
	for {
		select {
		case <-l.bgCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.bgCtx, 5*time.Second)
		err := l.flush(ctx)
		switch {
		case err != nil && l.bgCtx.Err() == nil:
			if !failing {
				l.lg.Warn("jslog: writing cursors; retrying", "err", err)
			}
			failing = true
			l.setHealth(err)
		case err == nil && failing:
			l.lg.Info("jslog: cursors written again")
			failing = false
		}
		if err == nil {
			l.reclaimPassed(ctx)
		}
		cancel()
	}
}

// flush writes quarantine entries, then cursor moves. What fails stays
// pending for the next flush; a cursor is never written while an earlier
// quarantine entry is pending.
func (l *Log) flush(ctx context.Context) error {
	l.mu.Lock()
	quar, dirty := l.quar, l.dirty
	l.quar, l.dirty = nil, map[string]uint64{}
	l.mu.Unlock()
	putBack := func(q []wal.QuarantineEntry, d map[string]uint64) {
		l.mu.Lock()
		l.quar = append(q, l.quar...)
		for t, c := range d {
			if c > l.dirty[t] {
				l.dirty[t] = c
			}
		}
		l.mu.Unlock()
	}
	for i, q := range quar {
		v, _ := json.Marshal(q)
		if _, err := l.quarKV.Put(ctx, keyOf(q.Target)+"."+fmt.Sprintf("%020d", q.Seq), v); err != nil {
			putBack(quar[i:], dirty)
			return fmt.Errorf("jslog: writing quarantine of %s: %w", q.Target, err)
		}
	}
	var firstErr error
	for t, c := range dirty {
		if err := l.putCursor(ctx, t, c); err != nil {
			putBack(nil, map[string]uint64{t: c})
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// putCursor writes target's cursor c unless the bucket holds one as far,
// by compare-and-set on the revision, so a cursor never moves back even
// when two processes write it.
func (l *Log) putCursor(ctx context.Context, t string, c uint64) error {
	key := keyOf(t)
	val := []byte(strconv.FormatUint(c, 10))
	for range 3 {
		l.mu.Lock()
		d, ok := l.durable[t]
		l.mu.Unlock()
		if ok && d.next >= c {
			return nil
		}
		var rev uint64
		var err error
		if ok {
			rev, err = l.curKV.Update(ctx, key, val, d.rev)
		} else {
			rev, err = l.curKV.Create(ctx, key, val)
		}
		if err == nil {
			l.mu.Lock()
			if d2, ok := l.durable[t]; !ok || rev > d2.rev {
				l.durable[t] = kvCursor{next: c, rev: rev}
				l.reclaim = true
			}
			l.mu.Unlock()
			return nil
		}
		if code, _, isAPI := apiCode(err); !isAPI || (code != jetstream.JSErrCodeStreamWrongLastSequence && code != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("jslog: writing cursor of %s: %w", t, err)
		}
		// Someone else wrote it: take theirs and try again.
		e, gerr := l.curKV.Get(ctx, key)
		if gerr != nil {
			return fmt.Errorf("jslog: reading cursor of %s: %w", t, gerr)
		}
		l.onCursor(e)
	}
	return fmt.Errorf("jslog: writing cursor of %s: too many concurrent writers", t)
}

// passed reports whether every target of m has a committed cursor past
// it, given eff from effectiveCursors. Called with mu held.
func (l *Log) passed(m meta, eff map[string]uint64) bool {
	for _, t := range l.sets[m.set] {
		if eff[t] <= m.last() {
			return false
		}
	}
	return true
}

// effectiveCursors returns, per target, how far its committed cursors have
// passed every one of its records: its own cursor, or the lowest cursor of
// its lanes when every lane of a split has one, whichever is further.
// Called with mu held.
func (l *Log) effectiveCursors() map[string]uint64 {
	eff := map[string]uint64{}
	type split struct {
		min  uint64
		seen map[int]bool
	}
	splits := map[string]map[int]*split{}
	for id, c := range l.durable {
		base, lane, n := parseLane(id)
		if n == 1 {
			eff[base] = max(eff[base], c.next)
			continue
		}
		if splits[base] == nil {
			splits[base] = map[int]*split{}
		}
		sp := splits[base][n]
		if sp == nil {
			sp = &split{min: c.next, seen: map[int]bool{}}
			splits[base][n] = sp
		}
		sp.min = min(sp.min, c.next)
		sp.seen[lane] = true
	}
	for base, byN := range splits {
		for n, sp := range byN {
			if len(sp.seen) == n {
				eff[base] = max(eff[base], sp.min)
			}
		}
	}
	return eff
}

// reclaimPassed purges the messages at the head of the stream that every
// target they are routed to has passed (committed cursors only). Any
// process may do it; purging is idempotent.
func (l *Log) reclaimPassed(ctx context.Context) {
	l.mu.Lock()
	if !l.reclaim {
		l.mu.Unlock()
		return
	}
	l.reclaim = false
	eff := l.effectiveCursors()
	n := 0
	for n < len(l.index) && l.passed(l.index[n], eff) {
		n++
	}
	if n == 0 {
		l.mu.Unlock()
		return
	}
	upTo := l.index[n-1].seq + 1
	l.mu.Unlock()
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSequence(upTo)); err != nil {
		l.reclaimOut.fail(l.lg, "jslog: reclaiming delivered messages failed", "upTo", upTo, "err", err)
		l.mu.Lock()
		l.reclaim = true
		l.mu.Unlock()
		return
	}
	l.reclaimOut.ok(l.lg, "jslog: reclaiming delivered messages works again", "upTo", upTo)
	l.dropBelow(upTo)
}

// dropBelow forgets the messages before stream sequence s.
func (l *Log) dropBelow(s uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.index), func(i int) bool { return l.index[i].seq >= s })
	if i > 0 {
		for _, m := range l.index[:i] {
			l.events -= int64(m.count)
		}
		l.index = append(l.index[:0:0], l.index[i:]...)
	}
	l.cache.dropBelow(s)
}

// watchStream follows the stream's first sequence, which other processes
// move when they reclaim, and restarts the index's consumer when it
// stalls behind the stream: after a partition or a server restart the
// ordered consumer may wait long between its own reset attempts.
func (l *Log) watchStream() {
	defer l.bgWG.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	var seen uint64 // the index's end at the previous tick
	stalled := 0
	for {
		select {
		case <-l.bgCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.bgCtx, 2*time.Second)
		info, err := l.stream.Info(ctx)
		cancel()
		l.mu.Lock()
		last, acked := l.lastStream, l.maxAcked
		l.mu.Unlock()
		behind := acked > last || (err == nil && info.State.LastSeq > last)
		if behind && last == seen {
			stalled++
		} else {
			stalled = 0
		}
		seen = last
		if stalled >= 2 {
			l.lg.Warn("jslog: the index stopped following the stream; restarting it", "indexed", last)
			ctx, cancel := context.WithTimeout(l.bgCtx, 5*time.Second)
			if err := l.follow(ctx, last+1); err != nil {
				l.lg.Warn("jslog: restarting the index", "err", err)
			}
			cancel()
			stalled = 0
		}
		if err == nil {
			l.dropBelow(info.State.FirstSeq)
			l.mu.Lock()
			l.bytes = int64(info.State.Bytes)
			l.mu.Unlock()
		}
	}
}
