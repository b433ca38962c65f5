package wal

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
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
	keyLogID         = []byte("id")
)

// Defaults for Options.
const (
	DefaultMaxEvents          = 10_000_000
	DefaultMaxBytes           = 4 << 30
	DefaultCursorSyncInterval = 20 * time.Millisecond
	DefaultLockWait           = 5 * time.Minute
	// maxFrameBytes bounds the record data of one group commit.
	maxFrameBytes = 8 << 20
)

// Errors returned by the log.
var (
	// ErrFull is returned by Append when the records routed to a target
	// whose bound is reached (and whose policy is to block) do not fit
	// before the context ends. The error wrapping it names the target.
	ErrFull = errors.New("wal: log is full")
	// ErrTooLarge is returned by Append when the records could never fit
	// in a blocking target's bound.
	ErrTooLarge = errors.New("wal: records exceed the log's limits")
	// ErrClosed is returned by calls on a closed log.
	ErrClosed = errors.New("wal: log is closed")
	// ErrLocked is returned by Open and OpenReadOnly while another process
	// holds the log: a relay (Open, OpenReadOnly), or a reader such as
	// walinspect for longer than Options.LockWait (Open).
	ErrLocked = errors.New("wal: log is in use by another process")
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
	// MaxEvents is the default bound of each target: the records routed to
	// it that it has not passed yet; 0 means DefaultMaxEvents. SetLimit
	// overrides it per target.
	MaxEvents int64
	// MaxBytes is the default bound of each target in record bytes
	// (Entry data, key and name); 0 means DefaultMaxBytes.
	MaxBytes int64
	// CursorSyncInterval is how long a cursor move or quarantine entry may
	// wait to be committed when no append carries it; 0 means
	// DefaultCursorSyncInterval.
	CursorSyncInterval time.Duration
	// LockWait is how long Open waits while only readers (OpenReadOnly,
	// such as walinspect) hold the log, logging that it waits; 0 means
	// DefaultLockWait. A log held by another writer fails at once (after
	// one second) with ErrLocked whatever LockWait is.
	LockWait time.Duration
	// Retention keeps records every target has delivered, for Rewind and
	// Backfill; the zero value keeps nothing (see Retention, SetRetention).
	Retention Retention
	// Compression is the codec new frames are compressed with; ""
	// means DefaultCompression (s2). Frames already written keep theirs.
	Compression Compression
	// NoSync skips fsync. For tests only: it voids the durability guarantee.
	NoSync bool
	// Logger receives the log's messages; nil means slog.Default().
	Logger *slog.Logger
}

// QuarantineEntry is an event a target rejected for good, or a damaged
// frame that held records the target still needed.
type QuarantineEntry struct {
	Target string `json:"target"`
	Seq    uint64 `json:"seq"`
	// Last is the last sequence a damaged frame covered (its records are
	// lost); 0 for a rejected event.
	Last     uint64          `json:"lastSeq,omitempty"`
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
	Time     time.Time       `json:"time"`
	Key      string          `json:"key"`
	Name     string          `json:"eventName"`
	Data     json.RawMessage `json:"record"`
}

// Log is a write-ahead log. Its methods are safe for concurrent use.
type Log struct {
	db       *bolt.DB
	opts     Options
	log      *slog.Logger
	readOnly bool

	c  committer // committer.go
	ix index     // index.go

	codec   logframe.Codec // new frames' codec (compression.go)
	dec     decodedCache   // framecache.go
	lastSeq atomic.Uint64  // last committed sequence
	id      string         // the log's id (meta "id"); "" in a log that predates ids, read-only
}

// Open opens or creates the log at path. A damaged frame never makes it
// fail (see Damage); bbolt pages it cannot read do, with an error wrapping
// ErrCorrupt.
func Open(path string, opts Options) (l *Log, err error) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.CursorSyncInterval <= 0 {
		opts.CursorSyncInterval = DefaultCursorSyncInterval
	}
	if opts.LockWait <= 0 {
		opts.LockWait = DefaultLockWait
	}
	if err := opts.Compression.Validate(); err != nil {
		return nil, err
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.Default()
	}
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			l, err = nil, damagedFile(path, r)
		}
	}()
	db, err = openWaiting(path, opts.LockWait, lg, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
		NoSync:          opts.NoSync,
	})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if opts.Retention.On() {
			if err := markRetention(tx); err != nil {
				return err
			}
		}
		// The log's id, drawn once when the file is new (or predates ids).
		if mb := tx.Bucket(bucketMeta); mb.Get(keyLogID) == nil {
			return mb.Put(keyLogID, []byte(newLogID()))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	l = newLog(db, opts, lg, false)
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	l.quarantineLoadDamage()
	l.c.wg.Add(2)
	go l.batch()
	go l.commit()
	return l, nil
}

// OpenReadOnly opens the log at path for reading only. It never changes the
// file. It returns ErrLocked if a relay holds the log, and an error wrapping
// ErrCorrupt if bbolt cannot read the file's pages.
func OpenReadOnly(path string) (l *Log, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var db *bolt.DB
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			l, err = nil, damagedFile(path, r)
		}
	}()
	db, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is held by a running relay", ErrLocked, path)
	}
	if err != nil {
		return nil, openError(path, err)
	}
	l = newLog(db, Options{MaxEvents: DefaultMaxEvents, MaxBytes: DefaultMaxBytes}, slog.Default(), true)
	if err := l.load(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// damagedFile is the error for a panic bbolt raised reading the file.
func damagedFile(path string, r any) error {
	return fmt.Errorf("%w: %s: bbolt cannot read the file's pages (%v); copy what is intact with walinspect salvage", ErrCorrupt, path, r)
}

func newLog(db *bolt.DB, opts Options, lg *slog.Logger, ro bool) *Log {
	l := &Log{db: db, opts: opts, log: lg, readOnly: ro}
	l.codec, _ = opts.Compression.codec() // Open validated it
	l.c = committer{
		reqs:    make(chan *appendReq, 4096),
		frames:  make(chan []*pendingFrame, 2),
		closing: make(chan struct{}),
	}
	l.ix.init(Limit{MaxEvents: opts.MaxEvents, MaxBytes: opts.MaxBytes})
	l.ix.ret = opts.Retention
	return l
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// load rebuilds the in-memory index from the frame headers and the
// cursors. Damaged frames are remembered, not fatal.
func (l *Log) load() error {
	ix := &l.ix
	return l.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("wal: %s is not a relay log (no %q bucket)", l.db.Path(), b)
			}
		}
		next := uint64(1)
		l.id = string(tx.Bucket(bucketMeta).Get(keyLogID))
		if v := tx.Bucket(bucketMeta).Get(keyNextSeq); len(v) == 8 {
			next = max(binary.BigEndian.Uint64(v), 1)
		}
		scanFrames(tx, 0, next-1, func(f *storedFrame) bool {
			m := &frameMeta{first: f.first, last: f.last}
			switch {
			case f.err != nil:
				m.damage = reason(f.err)
			case f.h.version == frameV1:
				// Version 1 headers carry no tallies: measure the records.
				recs, err := f.records()
				if err != nil {
					m.damage = reason(err) // its target table is not trusted either
					break
				}
				m.targets, m.bytes = tallies(recs)
				m.targets = ix.intern(m.targets)
				m.count = int64(len(recs))
			default:
				m.targets, m.count, m.bytes = ix.intern(f.h.targets), int64(f.h.count), f.h.bytes
			}
			if n := len(ix.frames); n > 0 && ix.frames[n-1].last >= m.first {
				// Overlapping ranges are damage too; keep the first.
				ix.frames[n-1].last = m.first - 1
			}
			ix.frames = append(ix.frames, m)
			ix.events += m.count
			ix.bytes += m.bytes
			next = max(next, m.last+1)
			return true
		})
		ix.nextSeq = next
		l.lastSeq.Store(next - 1)
		err := tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				ix.cursors[string(k)] = binary.BigEndian.Uint64(v)
				ix.durable[string(k)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range ix.frames {
			for _, t := range m.targets {
				if ix.counts(t.target, m) {
					ix.use(t.target).add(t.n, t.bytes)
				}
			}
		}
		ix.loadRetention(tx.Bucket(bucketMeta).Get(keyRetention) != nil) // retention.go
		return nil
	})
}

// reason is the short form of a damage error.
func reason(err error) string {
	var ce *corruptError
	if errors.As(err, &ce) {
		return ce.msg
	}
	return err.Error()
}

// LastSeq returns the sequence of the last durable record, 0 if none was
// ever appended.
func (l *Log) LastSeq() uint64 { return l.lastSeq.Load() }

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

// Read calls fn for each record from sequence from on, in order, until fn
// returns false, the committed records end or ctx ends. When target is not
// empty only records routed to it are passed. It returns the sequence after
// the last record examined, which is where the next Read should start.
//
// fn may keep r and its Data after it returns: the log never writes to
// or reuses them (see "Reading" in the package documentation).
//
// A damaged frame is passed over: its records are lost, the damage is
// logged and listed by Damage, and each target that still needed them gets
// one quarantine entry naming the reason and the sequence range (not on a
// read-only log). Read fails only when ctx ends or bbolt cannot read the
// file (an error wrapping ErrCorrupt).
func (l *Log) Read(ctx context.Context, from uint64, target string, fn func(Record) bool) (next uint64, err error) {
	if err := ctx.Err(); err != nil {
		return from, err
	}
	last := l.lastSeq.Load()
	next = from
	if from > last {
		return from, nil
	}
	var damaged []damagedFrame
	defer func() {
		if r := recover(); r != nil {
			err = damagedFile(l.db.Path(), r)
		}
		for _, d := range damaged {
			l.noteDamage(d)
		}
	}()
	err = l.db.View(func(tx *bolt.Tx) error {
		var ferr error
		scanFrames(tx, from, last, func(f *storedFrame) bool {
			if ferr = ctx.Err(); ferr != nil {
				return false
			}
			if f.first > last {
				return false
			}
			if f.last < next {
				return true
			}
			next = max(next, f.first)
			if f.err == nil && target != "" && !f.h.hasTarget(target) {
				next = f.last + 1
				return true
			}
			recs, err := l.dec.records(f)
			if err != nil {
				damaged = append(damaged, damagedFrame{first: f.first, last: f.last, reason: reason(err), targets: f.h.targets, known: f.trustedTable()})
				next = f.last + 1
				return true
			}
			var cp *dataCopier
			if sparseFor(&f.h, target) {
				cp = newDataCopier(&f.h, target)
			}
			// Whether a target list holds target is asked once per run of
			// records sharing it, not once per record.
			set, in := int32(-2), false
			for i := recs.from(next); i < len(recs.recs); i++ {
				x := &recs.recs[i]
				next = x.seq + 1
				if target != "" {
					if x.set != set {
						set, in = x.set, x.set >= 0 && contains(recs.sets[x.set], target)
					}
					if !in {
						continue
					}
				}
				r := recs.record(i)
				if cp != nil {
					r.Key, r.Data = strings.Clone(r.Key), cp.copy(r.Data)
				}
				if !fn(r) {
					return false
				}
			}
			next = f.last + 1
			return true
		})
		return ferr
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

// Close stops accepting appends, commits what was queued and every pending
// cursor move, and closes the file.
func (l *Log) Close() error {
	l.ix.mu.Lock()
	if l.ix.closed {
		l.ix.mu.Unlock()
		return nil
	}
	l.ix.closed = true
	l.ix.wake()
	l.ix.mu.Unlock()
	if !l.readOnly {
		l.c.sendMu.Lock() // no append is between its check and its send
		close(l.c.closing)
		l.c.sendMu.Unlock()
		l.c.wg.Wait()
		l.logDrops(true)
	}
	return l.db.Close()
}
