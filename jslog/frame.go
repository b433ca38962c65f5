package jslog

import (
	"encoding/binary"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	"github.com/bucketrelay/bucketrelay/wal"
)

// A message's body is one frame, laid out like wal's and built of the same
// parts (internal/logframe: codecs, CRC-32C, length-prefixed fields):
//
//	version (1 byte) | CRC-32C of the rest (4 bytes, big-endian)
//	[version 2: codec (1 byte, logframe.Codec)]
//	uvarint records | uvarint targets, each a uvarint-prefixed name
//	uvarint length of the raw records | compressed raw records
//
// Version 1 frames are compressed with zstd, and zstd frames are still
// written as version 1, so that a stream written with compression "zstd"
// stays readable by releases before version 2.
//
// and each raw record is
//
//	varint append time (ns) | varint event time (ns, 0 if none)
//	uvarint targets, each an index into the table
//	uvarint-prefixed key, name and data | CRC-32C of the record (4 bytes)
//
// Two headers repeat what the index needs without the body: hdrCount (the
// record count) and hdrTargets (each target with its record count, URL
// query encoded), so a relay can follow the stream headers-only.
const (
	frameV1    = 1
	frameV2    = 2
	hdrCount   = "Relay-Records"
	hdrTargets = "Relay-Targets"
	// seqBits is how many low bits of a record's sequence hold its index
	// in its message: seq = streamSeq<<seqBits | index.
	seqBits = 16
	// MaxRecordsPerMessage bounds the records of one group commit.
	MaxRecordsPerMessage = 1 << seqBits
)

// Seq returns the sequence of the record at index i of the message at
// stream sequence streamSeq.
func Seq(streamSeq uint64, i int) uint64 { return streamSeq<<seqBits | uint64(i) }

// SplitSeq returns the stream sequence and index of the record numbered
// seq.
func SplitSeq(seq uint64) (streamSeq uint64, i int) {
	return seq >> seqBits, int(seq & (MaxRecordsPerMessage - 1))
}

// Direct calls, not function variables, so they inline in the loops.
func appendBytes(dst, b []byte) []byte              { return logframe.AppendBytes(dst, b) }
func readUvarint(b []byte, off *int) (uint64, bool) { return logframe.ReadUvarint(b, off) }
func readVarint(b []byte, off *int) (int64, bool)   { return logframe.ReadVarint(b, off) }
func readBytes(b []byte, off *int) ([]byte, bool)   { return logframe.ReadBytes(b, off) }

// entrySize estimates what e adds to a frame before compression.
func entrySize(e *wal.Entry) int {
	n := len(e.Data) + len(e.Key) + len(e.Name) + 32
	for _, t := range e.Targets {
		n += len(t) + 2
	}
	return n
}

// encodeFrame builds the body, compressed with codec, and index headers for
// entries.
func encodeFrame(codec logframe.Codec, now time.Time, entries []*wal.Entry) (body []byte, count, targets string) {
	idx := make(map[string]uint64)
	var names []string
	routed := url.Values{}
	for _, e := range entries {
		for _, t := range e.Targets {
			if _, ok := idx[t]; !ok {
				idx[t] = uint64(len(names))
				names = append(names, t)
			}
		}
	}
	perTarget := make([]int, len(names))
	var raw []byte
	nowNs := now.UnixNano()
	for _, e := range entries {
		start := len(raw)
		raw = binary.AppendVarint(raw, nowNs)
		var et int64
		if !e.EventTime.IsZero() {
			et = e.EventTime.UnixNano()
		}
		raw = binary.AppendVarint(raw, et)
		raw = binary.AppendUvarint(raw, uint64(len(e.Targets)))
		for _, t := range e.Targets {
			raw = binary.AppendUvarint(raw, idx[t])
			perTarget[idx[t]]++
		}
		raw = appendBytes(raw, []byte(e.Key))
		raw = appendBytes(raw, []byte(e.Name))
		raw = appendBytes(raw, e.Data)
		raw = binary.BigEndian.AppendUint32(raw, logframe.CRC(raw[start:]))
	}
	est := len(raw) / 3
	if codec == logframe.None {
		est = len(raw)
	}
	out := make([]byte, 5, 64+est)
	out[0] = frameV1
	if codec != logframe.Zstd {
		out[0] = frameV2
		out = append(out, byte(codec))
	}
	out = binary.AppendUvarint(out, uint64(len(entries)))
	out = binary.AppendUvarint(out, uint64(len(names)))
	for i, t := range names {
		out = appendBytes(out, []byte(t))
		routed.Set(t, strconv.Itoa(perTarget[i]))
	}
	out = binary.AppendUvarint(out, uint64(len(raw)))
	out = codec.Compress(out, raw)
	binary.BigEndian.PutUint32(out[1:5], logframe.CRC(out[5:]))
	return out, strconv.Itoa(len(entries)), routed.Encode()
}

// corruptError names the sequence of a damaged message or record; it
// matches wal.ErrCorrupt.
type corruptError struct {
	seq uint64
	msg string
}

func (e *corruptError) Error() string {
	s, i := SplitSeq(e.seq)
	return fmt.Sprintf("jslog: corrupt record at sequence %d (stream message %d, record %d): %s", e.seq, s, i, e.msg)
}
func (e *corruptError) Is(target error) bool { return target == wal.ErrCorrupt }

// frame is a checked, decompressed message body.
type frame struct {
	streamSeq uint64
	codec     logframe.Codec
	count     int
	targets   []string
	raw       []byte
}

func (f *frame) size() int { return len(f.raw) + 64*len(f.targets) + 64 }

// decodeFrame checks and decompresses the body of the message at
// streamSeq.
func decodeFrame(streamSeq uint64, v []byte) (*frame, error) {
	first := Seq(streamSeq, 0)
	f := &frame{streamSeq: streamSeq, codec: logframe.Zstd}
	if len(v) < 6 || (v[0] != frameV1 && v[0] != frameV2) {
		return nil, &corruptError{first, "bad frame version"}
	}
	if binary.BigEndian.Uint32(v[1:5]) != logframe.CRC(v[5:]) {
		return nil, &corruptError{first, "frame checksum mismatch"}
	}
	off := 5
	if v[0] == frameV2 {
		f.codec = logframe.Codec(v[5])
		if !f.codec.Known() {
			return nil, &corruptError{first, fmt.Sprintf("unknown codec %d (written by a later release?)", v[5])}
		}
		off = 6
	}
	c, ok := readUvarint(v, &off)
	if !ok || c == 0 || c > MaxRecordsPerMessage {
		return nil, &corruptError{first, "bad record count"}
	}
	f.count = int(c)
	nt, ok := readUvarint(v, &off)
	if !ok || nt > uint64(len(v)) {
		return nil, &corruptError{first, "bad target table"}
	}
	f.targets = make([]string, nt)
	for i := range f.targets {
		b, ok := readBytes(v, &off)
		if !ok {
			return nil, &corruptError{first, "bad target table"}
		}
		f.targets[i] = string(b)
	}
	rl, ok := readUvarint(v, &off)
	if !ok || rl > 1<<30 {
		return nil, &corruptError{first, "bad payload length"}
	}
	raw, err := f.codec.Decompress(v[off:], int(rl))
	if err != nil {
		return nil, &corruptError{first, "payload does not decompress: " + err.Error()}
	}
	f.raw = raw
	return f, nil
}

// records calls fn for each record of f from index from on that want
// accepts (every one if want is nil), in order, until fn returns false.
// Every record is checked; a record want refuses costs no copy of its
// name and data. Record data is a fresh copy, which the caller may keep.
func (f *frame) records(from int, want func(targets []string, key string) bool, fn func(wal.Record) bool) error {
	off := 0
	for i := 0; i < f.count; i++ {
		seq := Seq(f.streamSeq, i)
		start := off
		var r wal.Record
		r.Seq = seq
		at, ok1 := readVarint(f.raw, &off)
		et, ok2 := readVarint(f.raw, &off)
		nt, ok3 := readUvarint(f.raw, &off)
		if !ok1 || !ok2 || !ok3 || nt > uint64(len(f.targets)) {
			return &corruptError{seq, "bad record header"}
		}
		if nt > 0 {
			r.Targets = make([]string, nt)
			for j := range r.Targets {
				ti, ok := readUvarint(f.raw, &off)
				if !ok || ti >= uint64(len(f.targets)) {
					return &corruptError{seq, "bad target index"}
				}
				r.Targets[j] = f.targets[ti]
			}
		}
		key, ok1 := readBytes(f.raw, &off)
		name, ok2 := readBytes(f.raw, &off)
		data, ok3 := readBytes(f.raw, &off)
		if !ok1 || !ok2 || !ok3 || len(f.raw)-off < 4 {
			return &corruptError{seq, "truncated record"}
		}
		if binary.BigEndian.Uint32(f.raw[off:]) != logframe.CRC(f.raw[start:off]) {
			return &corruptError{seq, "record checksum mismatch"}
		}
		off += 4
		if i < from {
			continue
		}
		r.Key = string(key)
		if want != nil && !want(r.Targets, r.Key) {
			continue
		}
		r.AppendTime = time.Unix(0, at)
		if et != 0 {
			r.EventTime = time.Unix(0, et).UTC()
		}
		r.Name = string(name)
		r.Data = append([]byte(nil), data...)
		if !fn(r) {
			return nil
		}
	}
	return nil
}

// parseIndexHeaders reads hdrCount and hdrTargets.
func parseIndexHeaders(count, targets string) (int, map[string]int, bool) {
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 || n > MaxRecordsPerMessage {
		return 0, nil, false
	}
	q, err := url.ParseQuery(targets)
	if err != nil {
		return 0, nil, false
	}
	out := make(map[string]int, len(q))
	for t, vs := range q {
		if len(vs) != 1 {
			return 0, nil, false
		}
		c, err := strconv.Atoi(vs[0])
		if err != nil || c <= 0 || c > n {
			return 0, nil, false
		}
		out[t] = c
	}
	return n, out, true
}
