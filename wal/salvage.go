package wal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// This file holds Scan and Salvage: they read a log file that may be
// damaged, at the level of frames and of bbolt's pages, without ever
// writing it, and Salvage copies what is intact into a fresh log. They open
// the file with bbolt themselves (read-only) instead of through Log, because
// a damaged log may not load.

// SalvageOptions configures Scan and Salvage. The zero value is usable.
type SalvageOptions struct {
	// Progress, when not nil, is called after each frame read with the last
	// sequence reached and the log's last sequence. It runs on the caller's
	// goroutine; nil means no progress reports.
	Progress func(seq, last uint64)
}

// DamagedRange is a range of sequences whose records could not be read.
type DamagedRange struct {
	// First and Last bound the sequences lost, inclusive. A range found in
	// an unreadable page may also cover sequences that were reclaimed
	// before the damage: Last-First+1 is an upper bound of the records lost.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Reason says what is wrong, for instance "frame checksum mismatch".
	Reason string `json:"reason"`
	// Targets are the targets the frame's header names, when the header
	// still parses; empty when unknown.
	Targets []string `json:"targets,omitempty"`
}

// SalvageReport says what Scan or Salvage found and what Salvage copied.
type SalvageReport struct {
	// Frames and Records count the intact frames and records (copied by
	// Salvage).
	Frames  int   `json:"frames"`
	Records int64 `json:"records"`
	// Cursors and QuarantineEntries count the intact cursors and quarantine
	// entries (copied by Salvage).
	Cursors           int `json:"cursors"`
	QuarantineEntries int `json:"quarantineEntries"`
	// NextSeq is the sequence the next append gets.
	NextSeq uint64 `json:"nextSeq"`
	// Damaged lists the ranges of records that could not be read, in
	// sequence order; DamagedRecords sums their sizes (an upper bound).
	Damaged        []DamagedRange `json:"damaged"`
	DamagedRecords uint64         `json:"damagedRecords"`
	// Problems lists every problem found, records included, one sentence
	// each naming the bucket (records, cursors, quarantine, meta) or the
	// page.
	Problems []string `json:"problems"`
	// UnreadablePages counts the places where bbolt could not read a page
	// (it panicked) and the walk went on past it, or stopped.
	UnreadablePages int `json:"unreadablePages"`
	// ResetCursors lists the targets whose cursor was damaged; Salvage sets
	// each to the oldest sequence it copied, so that target redelivers what
	// the log holds for it rather than skipping anything.
	ResetCursors []string `json:"resetCursors,omitempty"`
}

// OK reports whether nothing was found damaged.
func (r *SalvageReport) OK() bool { return len(r.Problems) == 0 }

func (r *SalvageReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *SalvageReport) damaged(d DamagedRange) {
	if d.Last < d.First {
		return
	}
	r.Damaged = append(r.Damaged, d)
	r.DamagedRecords += d.Last - d.First + 1
	where := fmt.Sprintf("sequence %d", d.First)
	if d.Last > d.First {
		where = fmt.Sprintf("sequences %d-%d", d.First, d.Last)
	}
	msg := "records: " + where + ": " + d.Reason
	if len(d.Targets) > 0 {
		msg += fmt.Sprintf(" (routed to %v)", d.Targets)
	}
	r.Problems = append(r.Problems, msg)
}

// Errors returned by Scan, Salvage and CheckMeta.
var (
	// ErrExists is returned by Salvage when its destination already exists.
	ErrExists = errors.New("wal: destination exists")
	// ErrNotLog is returned for a file that is not a bbolt file (neither
	// meta page carries bbolt's magic number) or a bbolt file without the
	// log's buckets: not damage, the wrong file.
	ErrNotLog = errors.New("wal: not a relay log")
)

// Scan reads the log file at path the way Salvage does, without writing
// anything anywhere, and reports every problem: damaged frames and records
// (with their sequence ranges), pages bbolt cannot read, bad cursors and
// quarantine entries, and damaged bbolt meta pages (see CheckMeta). It
// returns an error wrapping ErrLocked while a relay holds the log, one
// wrapping ErrNotLog for a file that is not a relay log, and one wrapping
// ErrCorrupt when bbolt cannot open the file at all (the report then holds
// what CheckMeta found).
func Scan(path string, opts SalvageOptions) (SalvageReport, error) {
	return salvage(path, nil, opts)
}

// Salvage copies every intact record of the log at src into a fresh log at
// dst: the same frames under the same sequences (so the same routing),
// every cursor and every quarantine entry, and the next sequence. Frames
// that fail their checksums, records in pages bbolt cannot read and
// quarantine entries that do not parse are skipped and reported; a damaged
// cursor is reset to the oldest sequence copied (at-least-once: the target
// redelivers rather than skips). The report lists everything skipped, as
// Scan does.
//
// src is opened read-only and never written. dst must not exist (ErrExists
// otherwise); on error dst is removed. The result opens with Open and
// passes Verify. Salvage returns an error wrapping ErrLocked while a relay
// holds src, one wrapping ErrNotLog when src is not a relay log, and one
// wrapping ErrCorrupt when bbolt cannot open src at all (both meta pages
// damaged, or the page of its root bucket).
func Salvage(src, dst string, opts SalvageOptions) (rep SalvageReport, err error) {
	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return rep, fmt.Errorf("%w: %s", ErrExists, dst)
	}
	if err != nil {
		return rep, fmt.Errorf("wal: salvage: %w", err)
	}
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return rep, fmt.Errorf("wal: salvage: create %s: %w", dst, err)
	}
	err = out.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		rep, err = salvage(src, out, opts)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: salvage: %w", cerr)
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	return rep, err
}

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: salvage: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("wal: salvage: sync %s: %w", dir, err)
	}
	return nil
}

// DamageError is damage found in a log file's structure (bbolt's pages or
// meta pages) rather than in one record. It matches ErrCorrupt with
// errors.Is; its message names what is damaged.
type DamageError struct{ Msg string }

// Error returns the message.
func (e *DamageError) Error() string { return e.Msg }

// Is reports whether target is ErrCorrupt.
func (e *DamageError) Is(target error) bool { return target == ErrCorrupt }

func damagef(format string, args ...any) error {
	return &DamageError{Msg: fmt.Sprintf(format, args...)}
}

// salvageBatchBytes bounds the frame data Salvage writes per transaction.
const salvageBatchBytes = 32 << 20

// salvage does Scan's and Salvage's work; out is nil for Scan.
func salvage(path string, out *bolt.DB, opts SalvageOptions) (SalvageReport, error) {
	rep := SalvageReport{Damaged: []DamagedRange{}, Problems: []string{}}
	if fi, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("wal: %w", err)
	} else if fi.Size() == 0 {
		return rep, fmt.Errorf("%w: %s is empty", ErrNotLog, path)
	}
	db, err := openDamaged(path)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			problems, _ := CheckMeta(path)
			for _, p := range problems {
				rep.Problems = append(rep.Problems, p.Error())
			}
		}
		return rep, err
	}
	defer db.Close()
	// The file is locked now: no relay writes its meta pages meanwhile.
	metaProblems, err := CheckMeta(path)
	if err != nil {
		return rep, err
	}
	for _, p := range metaProblems {
		rep.Problems = append(rep.Problems, p.Error())
	}

	var missing []string
	if perr := guard(func() {
		_ = db.View(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketRecords, bucketCursors, bucketQuarantine, bucketMeta} {
				if tx.Bucket(b) == nil {
					missing = append(missing, string(b))
				}
			}
			return nil
		})
	}); perr != nil {
		return rep, damagef("wal: %s: bbolt cannot read the root of the file: %v", path, perr)
	}
	if len(missing) == 4 {
		return rep, fmt.Errorf("%w: %s has no %q bucket", ErrNotLog, path, bucketRecords)
	}
	for _, b := range missing {
		rep.problem("%s: the bucket is missing", b)
	}

	// The next sequence, as the meta bucket stores it.
	var next uint64
	if perr := guard(func() {
		_ = db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMeta)
			if b == nil {
				return nil
			}
			v := b.Get(keyNextSeq)
			switch {
			case v == nil:
				// A log that never committed a frame has none.
			case len(v) != 8:
				rep.problem("meta: the next sequence is %d bytes, want 8", len(v))
			default:
				next = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	}); perr != nil {
		rep.UnreadablePages++
		rep.problem("meta: the bucket's pages are unreadable: %v", perr)
	}

	// Frames, in key order; pages bbolt cannot read are skipped.
	w := &batchWriter{db: out}
	var (
		prevEnd uint64 // last sequence covered by the frames seen
		pend    *DamagedRange
		oldest  uint64              // first sequence copied
		routed  = map[string]bool{} // targets named by the frames
	)
	// closePending ends a damaged frame's range before sequence upTo.
	closePending := func(upTo uint64) {
		if pend == nil {
			return
		}
		if pend.Last < pend.First || pend.Last >= upTo {
			pend.Last = upTo - 1
		}
		rep.damaged(*pend)
		prevEnd = max(prevEnd, pend.Last)
		pend = nil
	}
	visit := func(k, v []byte) {
		if len(k) != 8 {
			rep.problem("records: key %x is not a sequence", k)
			return
		}
		first := binary.BigEndian.Uint64(k)
		if first == 0 {
			rep.problem("records: a frame is stored under sequence 0")
			return
		}
		closePending(first)
		if first <= prevEnd {
			rep.problem("records: frame at sequence %d overlaps the one before (last %d); skipped", first, prevEnd)
			return
		}
		h, err := decodeHeader(first, v)
		headerOK := err == nil
		if err == nil {
			err = checkRecords(h)
		}
		if err != nil {
			d := DamagedRange{First: first, Reason: salvageReason(first, err)}
			if headerOK {
				// The header passed its own checksum (version 2) or
				// parsed (version 1): its table and range are usable.
				for _, t := range h.targets {
					d.Targets = append(d.Targets, t.target)
				}
				d.Last = h.last
			}
			pend = &d
			return
		}
		for _, t := range h.targets {
			routed[t.target] = true
		}
		end := h.last
		prevEnd = end
		rep.Frames++
		rep.Records += int64(h.count)
		if oldest == 0 {
			oldest = first
		}
		if opts.Progress != nil {
			opts.Progress(end, max(next, end+1)-1)
		}
		w.put([][]byte{bucketRecords}, k, v)
	}
	walkTop(db, bucketRecords, next, visit, func(resume uint64, cause any) {
		rep.UnreadablePages++
		// The records between the last frame read and the next one
		// readable are in pages bbolt cannot read.
		if pend != nil {
			closePending(pend.First + 1)
		}
		from := prevEnd + 1
		upTo := resume // the first sequence readable again, 0 for none
		if upTo == 0 {
			upTo = max(next, from)
		}
		if upTo > from {
			rep.damaged(DamagedRange{First: from, Last: upTo - 1, Reason: fmt.Sprintf("in pages bbolt cannot read (%v)", cause)})
			prevEnd = upTo - 1
		} else {
			rep.problem("records: pages bbolt cannot read after sequence %d (%v)", prevEnd, cause)
		}
	})
	if pend != nil {
		closePending(max(next, pend.First+1))
	}
	next = max(next, prevEnd+1)
	rep.NextSeq = next
	if oldest == 0 {
		oldest = next
	}

	// Cursors.
	cursors := map[string]uint64{}
	walkNested(db, [][]byte{bucketCursors}, func(k, v []byte) {
		switch {
		case v == nil:
			rep.problem("cursors: %q is a bucket, not a cursor", k)
		case len(v) != 8:
			rep.problem("cursors: the cursor of %q is %d bytes, want 8 (salvage restarts it at %d)", k, len(v), oldest)
			cursors[string(k)] = oldest
			rep.ResetCursors = append(rep.ResetCursors, string(k))
		case binary.BigEndian.Uint64(v) > next:
			rep.problem("cursors: the cursor of %q is %d, past the end of the log (%d) (salvage restarts it at %d)", k, binary.BigEndian.Uint64(v), next, oldest)
			cursors[string(k)] = oldest
			rep.ResetCursors = append(rep.ResetCursors, string(k))
		default:
			cursors[string(k)] = binary.BigEndian.Uint64(v)
		}
	}, func(cause any) {
		rep.UnreadablePages++
		// A target without a cursor would start at the end of the log and
		// skip what it has pending: start the targets of the records
		// copied at the oldest one instead (redelivery, never a loss).
		var reset []string
		for t := range routed {
			if _, ok := cursors[t]; !ok {
				cursors[t] = oldest
				reset = append(reset, t)
			}
		}
		sort.Strings(reset)
		rep.ResetCursors = append(rep.ResetCursors, reset...)
		rep.problem("cursors: pages bbolt cannot read (%v); salvage restarts the cursors of %q at %d", cause, reset, oldest)
	})
	rep.Cursors = len(cursors)

	// Quarantine: one sub-bucket per target.
	var qtargets []string
	walkNested(db, [][]byte{bucketQuarantine}, func(k, v []byte) {
		if v != nil {
			rep.problem("quarantine: %q is a value, not a target's bucket", k)
			return
		}
		qtargets = append(qtargets, string(k))
	}, func(cause any) {
		rep.UnreadablePages++
		rep.problem("quarantine: pages bbolt cannot read (%v)", cause)
	})
	for _, t := range qtargets {
		qpath := [][]byte{bucketQuarantine, []byte(t)}
		walkNested(db, qpath, func(k, v []byte) {
			var q QuarantineEntry
			switch {
			case len(k) != 8:
				rep.problem("quarantine of %q: key %x is not a sequence", t, k)
			case v == nil || json.Unmarshal(v, &q) != nil:
				rep.problem("quarantine of %q: the entry at sequence %d does not parse", t, binary.BigEndian.Uint64(k))
			default:
				w.put(qpath, k, v)
				rep.QuarantineEntries++
			}
		}, func(cause any) {
			rep.UnreadablePages++
			rep.problem("quarantine of %q: pages bbolt cannot read (%v)", t, cause)
		})
	}
	sort.Strings(rep.ResetCursors)

	w.put([][]byte{bucketMeta}, keyNextSeq, seqKey(next))
	for t, c := range cursors {
		w.put([][]byte{bucketCursors}, []byte(t), seqKey(c))
	}
	if err := w.flush(); err != nil {
		return rep, fmt.Errorf("wal: salvage: write: %w", err)
	}
	return rep, nil
}

// batchWriter writes Salvage's copy in transactions of about
// salvageBatchBytes; with no db it drops everything (Scan).
type batchWriter struct {
	db    *bolt.DB
	items []batchItem
	size  int
	err   error
}

type batchItem struct {
	bucket [][]byte // a top-level bucket and nested ones, created as needed
	k, v   []byte
}

// put queues a copy of k and v (which may live in another transaction).
func (w *batchWriter) put(bucket [][]byte, k, v []byte) {
	if w.db == nil || w.err != nil {
		return
	}
	w.items = append(w.items, batchItem{bucket, bytes.Clone(k), bytes.Clone(v)})
	w.size += len(k) + len(v)
	if w.size >= salvageBatchBytes {
		w.err = w.flush()
	}
}

// flush writes what is queued and returns the first error met.
func (w *batchWriter) flush() error {
	if w.db == nil || w.err != nil || len(w.items) == 0 {
		return w.err
	}
	err := w.db.Update(func(tx *bolt.Tx) error {
		for _, it := range w.items {
			b := tx.Bucket(it.bucket[0])
			for _, name := range it.bucket[1:] {
				var err error
				if b, err = b.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if err := b.Put(it.k, it.v); err != nil {
				return err
			}
		}
		return nil
	})
	w.items, w.size = w.items[:0], 0
	return err
}

// checkRecords decodes every record of h, checking their checksums.
func checkRecords(h frameHeader) (err error) {
	if perr := guard(func() { _, err = decodeRecords(&h) }); perr != nil {
		return &corruptError{h.first, fmt.Sprintf("frame does not decode (%v)", perr)}
	}
	return err
}

// salvageReason is err's message without the "wal: corrupt record at sequence N:"
// prefix, which the range already says, for the frame stored under first.
func salvageReason(first uint64, err error) string {
	var ce *corruptError
	if errors.As(err, &ce) {
		if ce.seq != first {
			return fmt.Sprintf("%s (at sequence %d)", ce.msg, ce.seq)
		}
		return ce.msg
	}
	return err.Error()
}

// openDamaged opens path read-only with bbolt, turning a panic at open into
// an error wrapping ErrCorrupt.
func openDamaged(path string) (db *bolt.DB, err error) {
	perr := guard(func() {
		db, err = bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	})
	switch {
	case perr != nil:
		return nil, damagef("wal: %s: bbolt cannot open the file: %v", path, perr)
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		if isBolt(path) {
			return nil, damagef("wal: %s: bbolt cannot open the file: both meta pages are damaged (%v)", path, err)
		}
		return nil, fmt.Errorf("%w: %s is not a bbolt file (%v)", ErrNotLog, path, err)
	case err != nil:
		return nil, fmt.Errorf("wal: open %s: %w", path, err)
	}
	return db, nil
}

// guard runs fn and returns what it panicked with, nil if it did not. A
// memory fault in the mapped file (a damaged page pointing outside it)
// panics too instead of crashing the process.
func guard(fn func()) (p any) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { p = recover() }()
	fn()
	return nil
}

// walkTop calls fn with each key and value of the top-level bucket
// name, in key order, inside a read transaction (fn must copy what it
// keeps). Keys are big-endian sequences. When bbolt panics on a damaged
// page the walk goes on: it looks for the next key it can seek to (up to
// limit when not 0) and calls skipped with that key (0 for none) and the
// panic.
func walkTop(db *bolt.DB, name []byte, limit uint64, fn func(k, v []byte), skipped func(resume uint64, cause any)) {
	var (
		from  []byte // resume at this key; nil: the first
		lastK []byte // the last key passed to fn
	)
	for {
		read := false
		cause := guard(func() {
			_ = db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(name)
				if b == nil {
					return nil
				}
				c := b.Cursor()
				var k, v []byte
				if from == nil {
					k, v = c.First()
				} else {
					k, v = c.Seek(from)
				}
				for ; k != nil; k, v = c.Next() {
					if lastK != nil && bytes.Compare(k, lastK) <= 0 {
						continue // a damaged page pointing back: seen already
					}
					lastK = append(lastK[:0], k...)
					read = true
					fn(k, v)
				}
				return nil
			})
		})
		if cause == nil {
			return
		}
		after := keySeq(lastK)
		if !read && from != nil {
			// Seeking worked when probed but reading does not: count the
			// key as lost so that the walk moves on.
			after = max(after, keySeq(from))
			lastK = append(lastK[:0], from...)
		}
		resume := probe(db, name, after, limit)
		skipped(resume, cause)
		if resume == 0 {
			return
		}
		from = seqKey(resume)
	}
}

// keySeq reads k as a sequence; 0 for a key that is not one.
func keySeq(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// probe returns the first key after after that bbolt can seek to without
// panicking, 0 if it finds none. It probes after+1, after+2, after+4, ...
// up to limit (or 2^63) and then narrows the last step down, so a damaged
// page costs about 2·log2(distance) seeks.
func probe(db *bolt.DB, name []byte, after, limit uint64) uint64 {
	if limit == 0 || limit <= after {
		limit = 1 << 63
	}
	try := func(at uint64) (uint64, bool) {
		var got uint64
		var found bool
		cause := guard(func() {
			_ = db.View(func(tx *bolt.Tx) error {
				k, _ := tx.Bucket(name).Cursor().Seek(seqKey(at))
				if k != nil {
					got, found = keySeq(k), true
				}
				return nil
			})
		})
		if cause != nil {
			return 0, false
		}
		if !found {
			return 0, true // nothing from here on: readable, and empty
		}
		return got, got > after
	}
	lo, step := after, uint64(1) // seeks at or below lo fail
	for {
		at := after + step
		if at > limit || at < after {
			return 0
		}
		if got, ok := try(at); ok {
			// Narrow (lo, at] down to the first seek that works.
			hi := at
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if g, ok := try(mid); ok {
					hi, got = mid, g
				} else {
					lo = mid
				}
			}
			return got
		}
		lo = at
		step *= 2
	}
}

// walkNested calls fn for each key and value of the bucket at path; a
// panic on a damaged page ends the walk and is passed to skipped.
func walkNested(db *bolt.DB, path [][]byte, fn func(k, v []byte), skipped func(cause any)) {
	cause := guard(func() {
		_ = db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(path[0])
			for _, p := range path[1:] {
				if b == nil {
					return nil
				}
				b = b.Bucket(p)
			}
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error { fn(k, v); return nil })
		})
	})
	if cause != nil {
		skipped(cause)
	}
}

// bbolt's meta page, as bbolt v1.5 lays it out: a 16-byte page header (id,
// flags, count, overflow) and then magic, version, page size, flags, root
// bucket (page, sequence), freelist page, high-water page, txid, and an
// FNV-64a checksum of the fields before it, in the machine's byte order.
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltMetaFlag    = 0x04
	boltPageHeader  = 16
	boltMetaSumSize = 56 // bytes of the meta the checksum covers
)

// metaPage is one of bbolt's two meta pages as read from the file.
type metaPage struct {
	index    int
	offset   int64
	magic    uint32
	version  uint32
	pageSize uint32
	pgid     uint64
	txid     uint64
	err      string // what is wrong, "" when valid
}

func readMeta(r io.ReaderAt, index int, offset int64) metaPage {
	m := metaPage{index: index, offset: offset}
	buf := make([]byte, boltPageHeader+boltMetaSumSize+8)
	if n, err := r.ReadAt(buf, offset); n < len(buf) {
		m.err = fmt.Sprintf("cannot be read (%v)", err)
		return m
	}
	ne := binary.NativeEndian
	flags := ne.Uint16(buf[8:10])
	meta := buf[boltPageHeader:]
	m.magic = ne.Uint32(meta[0:4])
	m.version = ne.Uint32(meta[4:8])
	m.pageSize = ne.Uint32(meta[8:12])
	m.pgid = ne.Uint64(meta[40:48])
	m.txid = ne.Uint64(meta[48:56])
	h := fnv.New64a()
	h.Write(meta[:boltMetaSumSize])
	switch {
	case m.magic != boltMagic:
		m.err = fmt.Sprintf("bad magic %#x", m.magic)
	case m.version != boltVersion:
		m.err = fmt.Sprintf("bad version %d", m.version)
	case ne.Uint64(meta[boltMetaSumSize:]) != h.Sum64():
		m.err = "checksum mismatch"
	case flags != boltMetaFlag:
		// bbolt does not read the page header of a meta page, but the
		// page is damaged all the same.
		m.err = fmt.Sprintf("bad page flags %#x", flags)
	}
	return m
}

// isBolt reports whether either meta page of path carries bbolt's magic.
func isBolt(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if readMeta(f, 0, 0).magic == boltMagic {
		return true
	}
	for i := 0; i <= 14; i++ {
		if readMeta(f, 1, int64(1024)<<i).magic == boltMagic {
			return true
		}
	}
	return false
}

// CheckMeta reads bbolt's two meta pages of the file at path directly (the
// page size from the first one, or found as bbolt finds it) and returns one
// error wrapping ErrCorrupt per problem: a damaged meta page, and a damaged
// newest meta page, whose loss silently rolls back the file's last
// transaction since bbolt then opens the older one. It returns an error
// for a file it cannot read, and one wrapping ErrNotLog for a file neither
// of whose meta pages carries bbolt's magic number. Run it on a file no
// relay is writing: a meta page being written reads as damaged.
func CheckMeta(path string) ([]error, error) {
	if !isBolt(path) {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		return nil, fmt.Errorf("%w: %s is not a bbolt file", ErrNotLog, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	m0 := readMeta(f, 0, 0)
	pageSize := int64(0)
	if m0.err == "" || (m0.magic == boltMagic && validPageSize(m0.pageSize)) {
		pageSize = int64(m0.pageSize)
	}
	if pageSize == 0 {
		// As bbolt does: look for a valid second meta page at each page size.
		for i := 0; i <= 14; i++ {
			if m := readMeta(f, 1, int64(1024)<<i); m.err == "" && int64(m.pageSize) == int64(1024)<<i {
				pageSize = int64(m.pageSize)
				break
			}
		}
	}
	if pageSize == 0 {
		pageSize = int64(os.Getpagesize())
	}
	m1 := readMeta(f, 1, pageSize)
	var problems []error
	bad := func(m metaPage) {
		problems = append(problems, damagef("meta: bbolt meta page %d (offset %d) is damaged: %s", m.index, m.offset, m.err))
	}
	switch {
	case m0.err != "" && m1.err != "":
		bad(m0)
		bad(m1)
		problems = append(problems, damagef("meta: both bbolt meta pages are damaged: bbolt cannot open the file"))
	case m0.err != "" || m1.err != "":
		good, dmg := m0, m1
		if m0.err != "" {
			good, dmg = m1, m0
		}
		bad(dmg)
		switch {
		case dmg.txid == good.txid+1 && dmg.txid%2 == uint64(dmg.index):
			problems = append(problems, damagef("meta: the damaged meta page %d was the newest (txid %d): bbolt opens meta page %d (txid %d) instead, which silently rolls back the last transaction (appends, cursor moves or quarantine entries it committed are lost)", dmg.index, dmg.txid, good.index, good.txid))
		case dmg.txid+1 == good.txid:
			// The older copy: the newest transaction is intact.
		default:
			problems = append(problems, damagef("meta: the damaged meta page %d may have been the newest: if so, bbolt's fallback to meta page %d (txid %d) rolled back the last transaction", dmg.index, good.index, good.txid))
		}
	}
	return problems, nil
}

func validPageSize(n uint32) bool { return n >= 512 && n <= 1<<24 && n&(n-1) == 0 }
