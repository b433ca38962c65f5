package wal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket names inside the bbolt file.
var (
	bucketRecords    = []byte("records")
	bucketCursors    = []byte("cursors")
	bucketQuarantine = []byte("quarantine")
	bucketMeta       = []byte("meta")
	keyNextSeq       = []byte("next")
)

// Defaults for Options.
const (
	DefaultMaxEvents          = 10_000_000
	DefaultMaxBytes           = 4 << 30
	DefaultCursorSyncInterval = 20 * time.Millisecond
	// maxFrameBytes bounds the record data of one group commit.
	maxFrameBytes = 8 << 20
)

// Errors returned by the log.
var (
	// ErrFull is returned by Append when the records do not fit before the
	// context ends.
	ErrFull = errors.New("wal: log is full")
	// ErrTooLarge is returned by Append when the records could never fit.
	ErrTooLarge = errors.New("wal: records exceed the log's limits")
	// ErrClosed is returned by calls on a closed log.
	ErrClosed = errors.New("wal: log is closed")
	// ErrLocked is returned by OpenReadOnly while another process holds the
	// log for writing.
	ErrLocked = errors.New("wal: log is held by a running relay")
	// ErrReadOnly is returned by writing calls on a log opened read-only.
	ErrReadOnly = errors.New("wal: log is open read-only")
	// ErrFailed is returned by every writing call once a write or fsync of
	// the log file failed: after a failed fsync the kernel may have dropped
	// the dirty pages, so the log stops (fail-stop) and must be reopened.
	ErrFailed = errors.New("wal: storage failed; the log stopped")
	// ErrNoSpace is returned by Append when the file system is full
	// (ENOSPC). Nothing was logged; the call may be retried once space frees.
	ErrNoSpace = errors.New("wal: no space left on the device")
)

// Options configures a Log. The zero value is usable.
type Options struct {
	// MaxEvents bounds the records held; 0 means DefaultMaxEvents.
	MaxEvents int64
	// MaxBytes bounds the record data held, uncompressed; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// CursorSyncInterval is how long a cursor move or quarantine entry may
	// wait to be committed when no append carries it; 0 means
	// DefaultCursorSyncInterval.
	CursorSyncInterval time.Duration
	// NoSync skips fsync. For tests only: it voids the durability guarantee.
	NoSync bool
	// Logger receives the log's messages; nil means slog.Default().
	Logger *slog.Logger
}

// frameMeta is what the log keeps in memory about each stored frame.
type frameMeta struct {
	first   uint64
	count   uint32
	targets uint32 // index into Log.sets
	bytes   int64  // record data, uncompressed
}

func (f frameMeta) last() uint64 { return f.first + uint64(f.count) - 1 }

// QuarantineEntry is an event a target rejected for good.
type QuarantineEntry struct {
	Target   string          `json:"target"`
	Seq      uint64          `json:"seq"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	Time     time.Time       `json:"time"`
	Key      string          `json:"key"`
	Name     string          `json:"eventName"`
	Data     json.RawMessage `json:"record"`
}

type appendReq struct {
	entries []*Entry
	bytes   int64
	first   uint64
	done    chan error
}

type pendingFrame struct {
	meta   frameMeta
	value  []byte
	reqs   []*appendReq
	routed map[string]int // records per target
}

// Log is a write-ahead log. Its methods are safe for concurrent use.
type Log struct {
	db       *bolt.DB
	opts     Options
	log      *slog.Logger
	readOnly bool

	reqs    chan *appendReq
	frames  chan *pendingFrame
	closing chan struct{}
	wg      sync.WaitGroup
	sendMu  sync.RWMutex // held for reading while queueing an append

	mu       sync.Mutex
	nextSeq  uint64 // next sequence to assign (batcher)
	frameIdx []frameMeta
	sets     [][]string
	setIDs   map[string]uint32
	cursors  map[string]uint64 // committed or pending
	durable  map[string]uint64 // committed
	routed   map[string]uint64 // records committed per target since Open
	dirty    map[string]uint64 // cursor moves not yet committed
	quar     []QuarantineEntry // quarantine entries not yet committed
	events   int64             // records held (committed or reserved)
	bytes    int64
	freed    chan struct{} // closed and replaced on every reclamation
	closed   bool
	failErr  error         // set once storage failed; every write fails after it
	failed   chan struct{} // closed when failErr is set

	lastSeq  atomic.Uint64 // last committed sequence
	appended chan struct{} // closed and replaced on every commit
	poke     chan struct{}
}

// Open opens or creates the log at path.
func Open(path string, opts Options) (*Log, error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.CursorSyncInterval <= 0 {
		opts.CursorSyncInterval = DefaultCursorSyncInterval
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
		NoSync:          opts.NoSync,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	l := newLog(db, opts, false)
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	l.wg.Add(2)
	go l.batch()
	go l.commit()
	return l, nil
}

// OpenReadOnly opens the log at path for reading only. It never changes the
// file. It returns ErrLocked if a relay holds the log.
func OpenReadOnly(path string) (*Log, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	l := newLog(db, Options{MaxEvents: DefaultMaxEvents, MaxBytes: DefaultMaxBytes}, true)
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

func newLog(db *bolt.DB, opts Options, ro bool) *Log {
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	return &Log{
		db: db, opts: opts, log: lg, readOnly: ro,
		reqs:     make(chan *appendReq, 4096),
		frames:   make(chan *pendingFrame, 2),
		closing:  make(chan struct{}),
		setIDs:   map[string]uint32{},
		cursors:  map[string]uint64{},
		durable:  map[string]uint64{},
		routed:   map[string]uint64{},
		dirty:    map[string]uint64{},
		freed:    make(chan struct{}),
		appended: make(chan struct{}),
		poke:     make(chan struct{}, 1),
		failed:   make(chan struct{}),
	}
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// load rebuilds the in-memory frame index and cursors.
func (l *Log) load() error {
	return l.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("wal: %s is not a relay log (no %q bucket)", l.db.Path(), b)
			}
		}
		next := uint64(1)
		if v := tx.Bucket(bucketMeta).Get(keyNextSeq); len(v) == 8 {
			next = binary.BigEndian.Uint64(v)
		}
		err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return &corruptError{0, "bad record key"}
			}
			h, err := decodeHeader(binary.BigEndian.Uint64(k), v, false)
			if err != nil {
				return err
			}
			m := frameMeta{first: h.first, count: uint32(h.count), targets: l.setID(h.targets)}
			m.bytes = int64(h.rawLen)
			l.frameIdx = append(l.frameIdx, m)
			l.events += int64(h.count)
			l.bytes += m.bytes
			if m.last()+1 > next {
				next = m.last() + 1
			}
			return nil
		})
		if err != nil {
			return err
		}
		l.nextSeq = next
		l.lastSeq.Store(next - 1)
		return tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				l.cursors[string(k)] = binary.BigEndian.Uint64(v)
				l.durable[string(k)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
}

// setID interns a target set. Called with mu held or before goroutines start.
func (l *Log) setID(targets []string) uint32 {
	k := strings.Join(targets, "\x00")
	if id, ok := l.setIDs[k]; ok {
		return id
	}
	id := uint32(len(l.sets))
	l.sets = append(l.sets, append([]string(nil), targets...))
	l.setIDs[k] = id
	return id
}

// Append logs entries and returns the sequence of the first one once they
// are durable. Entries are numbered consecutively in the order given.
func (l *Log) Append(ctx context.Context, entries ...*Entry) (uint64, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	if len(entries) == 0 {
		return 0, nil
	}
	var size int64
	for _, e := range entries {
		size += e.size()
	}
	if err := l.reserve(ctx, int64(len(entries)), size); err != nil {
		return 0, err
	}
	r := &appendReq{entries: entries, bytes: size, done: make(chan error, 1)}
	l.sendMu.RLock()
	if err := l.writable(); err != nil {
		l.sendMu.RUnlock()
		l.release(int64(len(entries)), size)
		return 0, err
	}
	l.reqs <- r
	l.sendMu.RUnlock()
	// Once queued the records will be committed; wait for it even if ctx
	// ends, so that an error never hides a record that became durable.
	if err := <-r.done; err != nil {
		return 0, err
	}
	return r.first, nil
}

// reserve waits until n records of size bytes fit within the limits.
func (l *Log) reserve(ctx context.Context, n, size int64) error {
	if n > l.opts.MaxEvents || size > l.opts.MaxBytes {
		return ErrTooLarge
	}
	for {
		l.mu.Lock()
		if l.failErr != nil {
			err := l.failErr
			l.mu.Unlock()
			return err
		}
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		if l.events+n <= l.opts.MaxEvents && l.bytes+size <= l.opts.MaxBytes {
			l.events += n
			l.bytes += size
			l.mu.Unlock()
			return nil
		}
		freed := l.freed
		l.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return fmt.Errorf("%w (%d events, %d bytes held): %w", ErrFull, l.Events(), l.Bytes(), ctx.Err())
		}
	}
}

func (l *Log) release(n, size int64) {
	l.mu.Lock()
	l.events -= n
	l.bytes -= size
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

// batch gathers queued appends into frames: the first half of the group
// commit pipeline. It builds the next frame while the committer syncs the
// previous one.
func (l *Log) batch() {
	defer l.wg.Done()
	defer close(l.frames)
	for {
		var r *appendReq
		select {
		case r = <-l.reqs:
		case <-l.closing:
			// Close stops new sends first, so what is queued now is all.
			select {
			case r = <-l.reqs:
			default:
				return
			}
		}
		reqs := []*appendReq{r}
		size := r.bytes
	gather:
		for size < maxFrameBytes {
			select {
			case r = <-l.reqs:
				reqs = append(reqs, r)
				size += r.bytes
			default:
				break gather
			}
		}
		var entries []*Entry
		l.mu.Lock()
		first := l.nextSeq
		for _, r := range reqs {
			r.first = l.nextSeq
			l.nextSeq += uint64(len(r.entries))
			entries = append(entries, r.entries...)
		}
		l.mu.Unlock()
		v := encodeFrame(first, time.Now(), entries)
		var targets []string
		routed := map[string]int{}
		for _, e := range entries {
			for _, t := range e.Targets {
				if routed[t] == 0 {
					targets = append(targets, t)
				}
				routed[t]++
			}
		}
		l.mu.Lock()
		id := l.setID(targets)
		l.mu.Unlock()
		l.frames <- &pendingFrame{
			meta:   frameMeta{first: first, count: uint32(len(entries)), targets: id, bytes: size},
			value:  v,
			reqs:   reqs,
			routed: routed,
		}
	}
}

// commit writes frames, cursor moves and quarantine entries, one bbolt
// transaction at a time.
func (l *Log) commit() {
	defer l.wg.Done()
	tick := time.NewTicker(l.opts.CursorSyncInterval)
	defer tick.Stop()
	for {
		var frames []*pendingFrame
		select {
		case f, ok := <-l.frames:
			if !ok {
				l.writeTx(nil) // final cursors
				return
			}
			frames = append(frames, f)
		gather:
			for {
				select {
				case f, ok := <-l.frames:
					if !ok {
						break gather
					}
					frames = append(frames, f)
				default:
					break gather
				}
			}
		case <-tick.C:
		}
		l.writeTx(frames)
	}
}

func (l *Log) writeTx(frames []*pendingFrame) {
	l.mu.Lock()
	dirty := l.dirty
	quar := l.quar
	if len(frames) == 0 && len(dirty) == 0 && len(quar) == 0 {
		l.mu.Unlock()
		return
	}
	l.dirty = map[string]uint64{}
	l.quar = nil
	// Reclaim only what the cursors committed by this transaction allow,
	// so a crash never leaves a cursor behind a deleted frame.
	for t, c := range dirty {
		l.durable[t] = c
	}
	idx := append(l.frameIdx[:len(l.frameIdx):len(l.frameIdx)], metas(frames)...)
	reclaim := 0
	for _, m := range idx {
		if !l.passed(m) {
			break
		}
		reclaim++
	}
	l.mu.Unlock()

	err := l.db.Update(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketRecords)
		for _, f := range frames {
			if err := rb.Put(seqKey(f.meta.first), f.value); err != nil {
				return err
			}
		}
		if n := len(frames); n > 0 {
			next := frames[n-1].meta.last() + 1
			if err := tx.Bucket(bucketMeta).Put(keyNextSeq, seqKey(next)); err != nil {
				return err
			}
		}
		qb := tx.Bucket(bucketQuarantine)
		for _, q := range quar {
			b, err := qb.CreateBucketIfNotExists([]byte(q.Target))
			if err != nil {
				return err
			}
			v, _ := json.Marshal(q)
			if err := b.Put(seqKey(q.Seq), v); err != nil {
				return err
			}
		}
		cb := tx.Bucket(bucketCursors)
		for t, c := range dirty {
			if err := cb.Put([]byte(t), seqKey(c)); err != nil {
				return err
			}
		}
		for _, m := range idx[:reclaim] {
			if err := rb.Delete(seqKey(m.first)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// A failed commit leaves nothing durable: fail the appenders and
		// keep the cursor moves and quarantine entries for the next try.
		// A full disk is answered and retried; any other write or fsync
		// error stops the log, since the kernel may have dropped pages it
		// could not write and nothing read back can be trusted.
		if isNoSpace(err) {
			l.log.Warn("wal: commit failed: no space left on the device", "file", l.db.Path())
			err = ErrNoSpace
		} else {
			err = l.stop(err)
		}
		l.mu.Lock()
		for t, c := range dirty {
			if _, ok := l.dirty[t]; !ok {
				l.dirty[t] = c
			}
		}
		l.quar = append(quar, l.quar...)
		l.mu.Unlock()
		for _, f := range frames {
			for _, r := range f.reqs {
				l.release(int64(len(r.entries)), r.bytes)
				if errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed) {
					r.done <- err
				} else {
					r.done <- fmt.Errorf("wal: commit: %w", err)
				}
			}
		}
		return
	}
	l.mu.Lock()
	l.frameIdx = append(l.frameIdx[:0:0], idx[reclaim:]...)
	for _, f := range frames {
		for t, n := range f.routed {
			l.routed[t] += uint64(n)
		}
	}
	if n := len(frames); n > 0 {
		l.lastSeq.Store(frames[n-1].meta.last())
		close(l.appended)
		l.appended = make(chan struct{})
	}
	l.mu.Unlock()
	for _, f := range frames {
		for _, r := range f.reqs {
			r.done <- nil
		}
	}
	if reclaim > 0 {
		var n, b int64
		for _, m := range idx[:reclaim] {
			n += int64(m.count)
			b += m.bytes
		}
		l.release(n, b)
	}
}

func metas(frames []*pendingFrame) []frameMeta {
	out := make([]frameMeta, len(frames))
	for i, f := range frames {
		out[i] = f.meta
	}
	return out
}

// passed reports whether every target of frame m has a committed cursor
// past it.
// Called with mu held.
func (l *Log) passed(m frameMeta) bool {
	for _, t := range l.sets[m.targets] {
		if l.durable[t] <= m.last() {
			return false
		}
	}
	return true
}

// Routed returns how many records routed to target were committed since
// the log was opened, and the last committed sequence, as of one moment.
func (l *Log) Routed(target string) (n, lastSeq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.routed[target], l.lastSeq.Load()
}

// LastSeq returns the sequence of the last durable record, 0 if none was
// ever appended.
func (l *Log) LastSeq() uint64 { return l.lastSeq.Load() }

// FirstSeq returns the sequence of the oldest record held, or LastSeq()+1
// when the log holds none.
func (l *Log) FirstSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.frameIdx) == 0 {
		return l.lastSeq.Load() + 1
	}
	return l.frameIdx[0].first
}

// Events returns the number of records held, including those being
// appended.
func (l *Log) Events() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events
}

// Bytes returns the record data held, uncompressed, including records being
// appended.
func (l *Log) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// FileSize returns the size of the log file on disk in bytes.
func (l *Log) FileSize() int64 {
	fi, err := os.Stat(l.db.Path())
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Path returns the file the log is stored in.
func (l *Log) Path() string { return l.db.Path() }

// Appended returns a channel that is closed at the next commit of new
// records. Drain loops wait on it instead of polling.
func (l *Log) Appended() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appended
}

// Register makes sure target has a cursor, starting it after the last
// record so that it receives only records appended from now on. It returns
// the target's cursor.
func (l *Log) Register(target string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.cursors[target]; ok {
		return c
	}
	c := l.nextSeq
	l.cursors[target] = c
	if !l.readOnly {
		l.dirty[target] = c
	}
	return c
}

// Cursor returns target's cursor (the next sequence it has to deliver) and
// whether the target has one.
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

// Advance moves target's cursor to next: every record below next has been
// delivered or quarantined. The move is committed within
// CursorSyncInterval; a cursor never moves back.
func (l *Log) Advance(target string, next uint64) error {
	if l.readOnly {
		return ErrReadOnly
	}
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
// committed no later than any cursor move made after this call.
func (l *Log) Quarantine(target string, r Record, reason string, attempts int) error {
	if l.readOnly {
		return ErrReadOnly
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.quar = append(l.quar, QuarantineEntry{
		Target: target, Seq: r.Seq, Error: reason, Attempts: attempts, Time: time.Now().UTC(),
		Key: r.Key, Name: r.Name, Data: append(json.RawMessage(nil), r.Data...),
	})
	return nil
}

// Quarantined returns target's quarantine, oldest first.
func (l *Log) Quarantined(target string) ([]QuarantineEntry, error) {
	var out []QuarantineEntry
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuarantine).Bucket([]byte(target))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var q QuarantineEntry
			if err := json.Unmarshal(v, &q); err != nil {
				return &corruptError{binary.BigEndian.Uint64(k), "bad quarantine entry"}
			}
			out = append(out, q)
			return nil
		})
	})
	return out, err
}

// QuarantineTargets returns the targets that have a quarantine.
func (l *Log) QuarantineTargets() []string {
	var out []string
	_ = l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
			if v == nil {
				out = append(out, string(k))
			}
			return nil
		})
	})
	sort.Strings(out)
	return out
}

// Read calls fn for each record from sequence from on, in order, until fn
// returns false or the committed records end. When target is not empty only
// records routed to it are passed. It returns the sequence after the last
// record examined, which is where the next Read should start.
func (l *Log) Read(ctx context.Context, from uint64, target string, fn func(Record) bool) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return from, err
	}
	last := l.lastSeq.Load()
	next := from
	if from > last {
		return from, nil
	}
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		k, v := c.Seek(seqKey(from))
		if k == nil || binary.BigEndian.Uint64(k) > from {
			if pk, pv := c.Prev(); pk != nil {
				k, v = pk, pv
			} else if k == nil {
				k, v = c.First()
			}
		}
		for ; k != nil; k, v = c.Next() {
			h, err := decodeHeader(binary.BigEndian.Uint64(k), v, true)
			if err != nil {
				return err
			}
			if h.first > last {
				return nil
			}
			hlast := h.first + uint64(h.count) - 1
			if hlast < next {
				continue
			}
			if h.first > next {
				next = h.first // reclaimed or skipped range
			}
			if target != "" && !contains(h.targets, target) {
				next = hlast + 1
				continue
			}
			stop := false
			err = decodeRecords(h, next, func(r Record) bool {
				next = r.Seq + 1
				if target != "" && !contains(r.Targets, target) {
					return true
				}
				if !fn(r) {
					stop = true
					return false
				}
				return true
			})
			if err != nil || stop {
				return err
			}
		}
		return nil
	})
	return next, err
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// writable returns nil if the log takes writes, ErrClosed or the failure.
func (l *Log) writable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr != nil {
		return l.failErr
	}
	if l.closed {
		return ErrClosed
	}
	return nil
}

// Close stops accepting appends, commits what was queued and every pending
// cursor move, and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
	if !l.readOnly {
		l.sendMu.Lock() // no append is between its check and its send
		close(l.closing)
		l.sendMu.Unlock()
		l.wg.Wait()
	}
	return l.db.Close()
}
