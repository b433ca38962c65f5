package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
	"unsafe"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	bolt "go.etcd.io/bbolt"
)

// Entry is what a producer appends: one event record and where it goes.
type Entry struct {
	// Targets lists the IDs of the targets the record is routed to. An entry
	// with no targets is still logged (and reclaimed at once). The log never
	// changes it, and records read back may share one slice: read-only.
	Targets []string
	// Key is the record's "bucket/object" key.
	Key string
	// Name is the record's event name.
	Name string
	// EventTime is the record's own time, as the object store stamped it.
	EventTime time.Time
	// Data is the record's JSON.
	Data []byte
}

// Record is an entry as stored: its sequence and the time it was appended.
type Record struct {
	Seq        uint64
	AppendTime time.Time
	Entry
}

// size is what a record counts against a byte bound, and the one measure
// Bytes and Pending use, at append and after a restart alike (frames of
// version 2 store it, version 1 frames are measured by decoding them).
func (e *Entry) size() int64 { return int64(len(e.Data) + len(e.Key) + len(e.Name)) }

// Frame versions. Version 1 numbers its records consecutively from the
// frame's key; version 2 stores every record's sequence, so a frame can be
// rewritten in place (compaction, release) keeping only some records, and
// carries a checksum of its header of its own and per-target tallies, so
// opening a log reads headers only. Versions 1 and 2 compress with zstd.
// Version 3 is version 2 with one more header byte, under the header's
// checksum: the codec of its payload (logframe.Codec). Frames compressed
// with zstd are still written as version 2, so a log written with
// compression "zstd" stays readable by releases that predate version 3.
const (
	frameV1 = 1
	frameV2 = 2
	frameV3 = 3
)

var castagnoli = logframe.Castagnoli

// tally is what a frame holds for one target: records and their size.
type tally struct {
	target string
	n      int64
	bytes  int64
}

// frameHeader is the uncompressed part of a frame.
type frameHeader struct {
	version int
	first   uint64 // the frame's key
	last    uint64 // the highest sequence the frame may hold
	count   int
	bytes   int64   // sum of Entry.size of the records (v2)
	targets []tally // target table; n and bytes are 0 in v1 frames
	rawLen  int
	size    int            // bytes stored: header and payload
	codec   logframe.Codec // zstd in versions 1 and 2
	payload []byte         // compressed records
	crc     uint32         // checksum of what payloadCRC covers
	crcFrom []byte         // bytes the stored crc covers
}

// frameRecord is one record given to encodeFrame.
type frameRecord struct {
	seq uint64
	at  int64 // append time, Unix ns
	e   *Entry
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// encodeFrame builds the bbolt value for recs compressed with codec
// (version 2 for zstd, 3 for the others), stored under first and spanning
// sequences up to last. recs are in sequence order, within [first, last],
// and not empty.
func encodeFrame(codec logframe.Codec, first, last uint64, recs []frameRecord) []byte {
	v, _ := encodeTallied(codec, first, last, recs)
	return v
}

// frameTally is what a frame's header says of its records: the target
// table with per-target tallies, the record count and their size.
type frameTally struct {
	targets []tally
	count   int64
	bytes   int64
}

// encodeTallied is encodeFrame, also returning what the header holds, so a
// caller that rewrites a frame does not decode the header it just built.
func encodeTallied(codec logframe.Codec, first, last uint64, recs []frameRecord) ([]byte, frameTally) {
	idx := make(map[string]int)
	var targets []tally
	var total int64
	for _, r := range recs {
		sz := r.e.size()
		total += sz
		for _, t := range r.e.Targets {
			i, ok := idx[t]
			if !ok {
				i = len(targets)
				idx[t] = i
				targets = append(targets, tally{target: t})
			}
			targets[i].n++
			targets[i].bytes += sz
		}
	}
	rawp := bufPool.Get().(*[]byte)
	raw := (*rawp)[:0]
	for _, r := range recs {
		start := len(raw)
		raw = binary.AppendUvarint(raw, r.seq-first)
		raw = binary.AppendVarint(raw, r.at)
		var et int64
		if !r.e.EventTime.IsZero() {
			et = r.e.EventTime.UnixNano()
		}
		raw = binary.AppendVarint(raw, et)
		raw = binary.AppendUvarint(raw, uint64(len(r.e.Targets)))
		for _, t := range r.e.Targets {
			raw = binary.AppendUvarint(raw, uint64(idx[t]))
		}
		raw = appendBytes(raw, []byte(r.e.Key))
		raw = appendBytes(raw, []byte(r.e.Name))
		raw = appendBytes(raw, r.e.Data)
		raw = binary.BigEndian.AppendUint32(raw, logframe.CRC(raw[start:]))
	}
	est := len(raw) / 4 // zstd and s2 compress JSON much more
	if codec == logframe.None {
		est = len(raw)
	}
	out := make([]byte, 9, 64+16*len(targets)+est)
	out[0] = frameV2
	if codec != logframe.Zstd {
		out[0] = frameV3
		out = append(out, byte(codec))
	}
	out = binary.AppendUvarint(out, uint64(len(recs)))
	out = binary.AppendUvarint(out, last-first)
	out = binary.AppendUvarint(out, uint64(total))
	out = binary.AppendUvarint(out, uint64(len(targets)))
	for _, t := range targets {
		out = appendBytes(out, []byte(t.target))
		out = binary.AppendUvarint(out, uint64(t.n))
		out = binary.AppendUvarint(out, uint64(t.bytes))
	}
	out = binary.AppendUvarint(out, uint64(len(raw)))
	hdrEnd := len(out)
	out = codec.Compress(out, raw)
	binary.BigEndian.PutUint32(out[1:5], logframe.CRC(out[9:hdrEnd]))
	binary.BigEndian.PutUint32(out[5:9], logframe.CRC(out[hdrEnd:]))
	*rawp = raw
	bufPool.Put(rawp)
	return out, frameTally{targets: targets, count: int64(len(recs)), bytes: total}
}

// loadFrame decodes the frame stored under first in rb, header and
// records; an error (wrapping ErrCorrupt) means the frame is damaged.
func loadFrame(rb *bolt.Bucket, first uint64) ([]Record, error) {
	h, err := decodeHeader(first, rb.Get(seqKey(first)))
	if err != nil {
		return nil, err
	}
	return decodeRecords(&h)
}

// reencode builds a frame of the records of recs that keep accepts, with
// each record's targets cut down to those keep leaves (nil drops the
// record), compressed with codec, and returns it with its header's
// tallies. It returns a nil value when no record is left.
func reencode(codec logframe.Codec, first, last uint64, recs []Record, keep func(r *Record) []string) ([]byte, frameTally) {
	out := make([]frameRecord, 0, len(recs))
	entries := make([]Entry, len(recs))
	for i := range recs {
		ts := keep(&recs[i])
		if ts == nil {
			continue
		}
		entries[i] = recs[i].Entry
		entries[i].Targets = ts
		out = append(out, frameRecord{seq: recs[i].Seq, at: recs[i].AppendTime.UnixNano(), e: &entries[i]})
	}
	if len(out) == 0 {
		return nil, frameTally{}
	}
	return encodeTallied(codec, first, last, out)
}

func appendBytes(dst, b []byte) []byte { return logframe.AppendBytes(dst, b) }

// ErrCorrupt is returned when the log file is damaged: a frame or record
// that fails its checksum or does not parse (Verify, Backlogs of a
// read-only log), or bbolt pages that cannot be read (Open). Read and
// Backlogs skip damaged frames instead (see Damage); the error wrapping
// ErrCorrupt names the sequence or the file.
var ErrCorrupt = errors.New("wal: corrupt record")

type corruptError struct {
	seq uint64
	msg string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record at sequence %d: %s", e.seq, e.msg)
}
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// Direct calls, not function variables, so they inline in the decode loops.
func readUvarint(b []byte, off *int) (uint64, bool) { return logframe.ReadUvarint(b, off) }
func readVarint(b []byte, off *int) (int64, bool)   { return logframe.ReadVarint(b, off) }
func readBytes(b []byte, off *int) ([]byte, bool)   { return logframe.ReadBytes(b, off) }

// decodeHeader parses the uncompressed part of the frame stored under
// first. A version 2 header is always checked against its own checksum,
// which is cheap: opening a log reads headers only. The payload checksum
// (the whole frame's in version 1) is checked by checkPayload, which reads
// every byte of the frame. Target names are copied; payload aliases v.
func decodeHeader(first uint64, v []byte) (frameHeader, error) {
	h := frameHeader{first: first, size: len(v)}
	if len(v) < 5 {
		return h, &corruptError{first, "frame too short"}
	}
	h.version = int(v[0])
	h.codec = logframe.Zstd
	off := 9
	switch h.version {
	case frameV1:
		h.crc, h.crcFrom = binary.BigEndian.Uint32(v[1:5]), v[5:]
		return decodeHeaderV1(h, v)
	case frameV2:
	case frameV3:
		off = 10
	default:
		return h, &corruptError{first, fmt.Sprintf("unknown frame version %d", v[0])}
	}
	if len(v) < off {
		return h, &corruptError{first, "frame too short"}
	}
	if h.version == frameV3 {
		// Checked with the header below; an unknown codec is damage to
		// this build, reported only once the checksum says it was written.
		h.codec = logframe.Codec(v[9])
	}
	c, ok1 := readUvarint(v, &off)
	span, ok2 := readUvarint(v, &off)
	total, ok3 := readUvarint(v, &off)
	nt, ok4 := readUvarint(v, &off)
	if !ok1 || !ok2 || !ok3 || !ok4 || c == 0 || nt > uint64(len(v)) || span > 1<<62 {
		return h, &corruptError{first, "bad frame header"}
	}
	h.count, h.last, h.bytes = int(c), first+span, int64(total)
	h.targets = make([]tally, nt)
	for i := range h.targets {
		b, ok1 := readBytes(v, &off)
		n, ok2 := readUvarint(v, &off)
		sz, ok3 := readUvarint(v, &off)
		if !ok1 || !ok2 || !ok3 {
			return h, &corruptError{first, "bad target table"}
		}
		h.targets[i] = tally{target: string(b), n: int64(n), bytes: int64(sz)}
	}
	rl, ok := readUvarint(v, &off)
	if !ok || rl > 1<<32 {
		return h, &corruptError{first, "bad payload length"}
	}
	if binary.BigEndian.Uint32(v[1:5]) != logframe.CRC(v[9:off]) {
		return h, &corruptError{first, "frame header checksum mismatch"}
	}
	if !h.codec.Known() {
		return h, &corruptError{first, fmt.Sprintf("unknown codec %d (written by a later release?)", uint8(h.codec))}
	}
	h.rawLen = int(rl)
	h.payload = v[off:]
	h.crc, h.crcFrom = binary.BigEndian.Uint32(v[5:9]), h.payload
	return h, nil
}

func decodeHeaderV1(h frameHeader, v []byte) (frameHeader, error) {
	first := h.first
	off := 5
	c, ok := readUvarint(v, &off)
	if !ok || c == 0 {
		return h, &corruptError{first, "bad record count"}
	}
	h.count = int(c)
	h.last = first + c - 1
	nt, ok := readUvarint(v, &off)
	if !ok || nt > uint64(len(v)) {
		return h, &corruptError{first, "bad target table"}
	}
	h.targets = make([]tally, nt)
	for i := range h.targets {
		b, ok := readBytes(v, &off)
		if !ok {
			return h, &corruptError{first, "bad target table"}
		}
		h.targets[i].target = string(b)
	}
	rl, ok := readUvarint(v, &off)
	if !ok || rl > 1<<32 {
		return h, &corruptError{first, "bad payload length"}
	}
	h.rawLen = int(rl)
	h.payload = v[off:]
	return h, nil
}

// checkPayload verifies the checksum over the frame's payload (version 2)
// or whole frame (version 1).
func (h *frameHeader) checkPayload() error {
	if logframe.CRC(h.crcFrom) != h.crc {
		return &corruptError{h.first, "frame checksum mismatch"}
	}
	return nil
}

// hasTarget reports whether the frame's target table lists t.
func (h *frameHeader) hasTarget(t string) bool {
	for _, x := range h.targets {
		if x.target == t {
			return true
		}
	}
	return false
}

// decodeRecords checks the frame's checksum, decompresses its records and
// returns all of them, in sequence order. Nothing is returned from a frame
// that is damaged anywhere, so a caller never acts on half a frame. Record
// data is owned by the caller (a fresh buffer per frame).
func decodeRecords(h *frameHeader) ([]Record, error) {
	f, err := decodeFrameRecords(h)
	if err != nil {
		return nil, err
	}
	out := make([]Record, len(f.recs))
	for i := range out {
		out[i] = f.record(i)
	}
	return out, nil
}

// frameRecords is a frame's records as decoded once, checksums checked:
// the decompressed payload and, per record, where its fields lie. Read
// keeps it in the decoded-frame cache and builds each Record as it hands
// it out, so a cached frame holds no pointer per record for the garbage
// collector to scan. Everything in it is read-only once built.
type frameRecords struct {
	raw   []byte     // the decompressed payload: records' Data alias it
	keys  string     // raw as a string: records' Key alias it
	names []string   // event names, each once per run of records sharing it
	sets  [][]string // target lists, each once per run of records sharing it; full
	recs  []recordAt // in sequence order
}

// recordAt is one record of a frameRecords.
type recordAt struct {
	seq            uint64
	at, et         int64 // append and event time, Unix ns (et 0: none)
	data, dataEnd  int   // the record's data: raw[data:dataEnd]
	keyOff, keyEnd int   // its key: keys[keyOff:keyEnd]
	name           int32 // index in names
	set            int32 // index in sets; -1: no targets
}

// record returns the i-th record. Its Data is full (an append copies it),
// and records sharing a target list share one slice, also full.
func (f *frameRecords) record(i int) Record {
	x := &f.recs[i]
	r := Record{Seq: x.seq, AppendTime: time.Unix(0, x.at)}
	if x.et != 0 {
		r.EventTime = time.Unix(0, x.et).UTC()
	}
	if x.set >= 0 {
		r.Targets = f.sets[x.set]
	}
	r.Key = f.keys[x.keyOff:x.keyEnd]
	r.Name = f.names[x.name]
	r.Data = f.raw[x.data:x.dataEnd:x.dataEnd]
	return r
}

// from returns the index of the first record of sequence seq or later.
func (f *frameRecords) from(seq uint64) int {
	return sort.Search(len(f.recs), func(i int) bool { return f.recs[i].seq >= seq })
}

// decodeFrameRecords is decodeRecords without building the Records: the
// one parser of a frame's payload, so every reader meets damage alike.
func decodeFrameRecords(h *frameHeader) (*frameRecords, error) {
	if err := h.checkPayload(); err != nil {
		return nil, err
	}
	raw, err := h.codec.Decompress(h.payload, h.rawLen)
	if err != nil {
		return nil, &corruptError{h.first, "payload does not decompress: " + err.Error()}
	}
	if h.count > len(raw)/10 {
		// Every record takes at least 10 bytes.
		return nil, &corruptError{h.first, "payload length mismatch"}
	}
	// Keys are strings aliasing raw, which nothing writes to once it is
	// decoded (records' Data, handed out as bytes, lie elsewhere in it):
	// no allocation or copy per record. A reader keeping keys of a few
	// records of a frame copies them, as it does their data (Read for a
	// sparse target, a coalescing window).
	f := &frameRecords{raw: raw, keys: unsafe.String(unsafe.SliceData(raw), len(raw)), recs: make([]recordAt, h.count)}
	off := 0
	prev := uint64(0)
	prevSet := int32(-1) // the previous record's targets, and their indices
	var prevIdx [8]uint64
	for i := range f.recs {
		r := &f.recs[i]
		start := off
		if h.version == frameV1 {
			r.seq = h.first + uint64(i)
		} else {
			d, ok := readUvarint(raw, &off)
			if !ok {
				return nil, &corruptError{h.first, "bad record sequence"}
			}
			r.seq = h.first + d
		}
		if r.seq > h.last || (i > 0 && r.seq <= prev) {
			return nil, &corruptError{h.first, "record sequence out of order"}
		}
		prev = r.seq
		at, ok1 := readVarint(raw, &off)
		et, ok2 := readVarint(raw, &off)
		nt, ok3 := readUvarint(raw, &off)
		if !ok1 || !ok2 || !ok3 || nt > uint64(len(h.targets)) {
			return nil, &corruptError{r.seq, "bad record header"}
		}
		r.at, r.et = at, et
		switch {
		case nt == 0:
			r.set, prevSet = -1, -1
		case nt > uint64(len(prevIdx)):
			ts := make([]string, nt)
			for j := range ts {
				ti, ok := readUvarint(raw, &off)
				if !ok || ti >= uint64(len(h.targets)) {
					return nil, &corruptError{r.seq, "bad target index"}
				}
				ts[j] = h.targets[ti].target
			}
			r.set, prevSet = int32(len(f.sets)), -1
			f.sets = append(f.sets, ts)
		default:
			// Consecutive records mostly go to the same targets: they
			// share one slice then (full, so an append copies it).
			var idx [8]uint64
			for j := range int(nt) {
				ti, ok := readUvarint(raw, &off)
				if !ok || ti >= uint64(len(h.targets)) {
					return nil, &corruptError{r.seq, "bad target index"}
				}
				idx[j] = ti
			}
			if prevSet >= 0 && len(f.sets[prevSet]) == int(nt) && idx == prevIdx {
				r.set = prevSet
				break
			}
			ts := make([]string, nt)
			for j := range ts {
				ts[j] = h.targets[idx[j]].target
			}
			r.set, prevSet, prevIdx = int32(len(f.sets)), int32(len(f.sets)), idx
			f.sets = append(f.sets, ts)
		}
		key, ok1 := readBytes(raw, &off)
		r.keyOff, r.keyEnd = off-len(key), off
		name, ok2 := readBytes(raw, &off)
		data, ok3 := readBytes(raw, &off)
		if !ok1 || !ok2 || !ok3 || len(raw)-off < 4 {
			return nil, &corruptError{r.seq, "truncated record"}
		}
		if binary.BigEndian.Uint32(raw[off:]) != logframe.CRC(raw[start:off]) {
			return nil, &corruptError{r.seq, "record checksum mismatch"}
		}
		r.dataEnd = off
		r.data = off - len(data)
		off += 4
		if n := len(f.names); n == 0 || string(name) != f.names[n-1] { // event names repeat: one string
			f.names = append(f.names, string(name))
		}
		r.name = int32(len(f.names) - 1)
	}
	if off != len(raw) {
		return nil, &corruptError{h.first, "trailing bytes after the records"}
	}
	return f, nil
}

// tallies counts records per target, for frames whose header does not
// (version 1).
func tallies(recs []Record) (targets []tally, total int64) {
	idx := map[string]int{}
	for i := range recs {
		sz := recs[i].size()
		total += sz
		for _, t := range recs[i].Targets {
			j, ok := idx[t]
			if !ok {
				j = len(targets)
				idx[t] = j
				targets = append(targets, tally{target: t})
			}
			targets[j].n++
			targets[j].bytes += sz
		}
	}
	return targets, total
}
