package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Entry is what a producer appends: one event record and where it goes.
type Entry struct {
	// Targets lists the IDs of the targets the record is routed to. An entry
	// with no targets is still logged (and reclaimed at once).
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

// size is what a record counts against MaxBytes.
func (e *Entry) size() int64 { return int64(len(e.Data) + len(e.Key) + len(e.Name)) }

const frameVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true))
)

// frameHeader is the uncompressed part of a frame.
type frameHeader struct {
	first   uint64
	count   int
	targets []string
	rawLen  int
	payload []byte // compressed records
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// encodeFrame builds the bbolt value for entries numbered from first.
func encodeFrame(first uint64, now time.Time, entries []*Entry) []byte {
	// Target table: each distinct target once.
	idx := make(map[string]uint64)
	var targets []string
	for _, e := range entries {
		for _, t := range e.Targets {
			if _, ok := idx[t]; !ok {
				idx[t] = uint64(len(targets))
				targets = append(targets, t)
			}
		}
	}
	rawp := bufPool.Get().(*[]byte)
	raw := (*rawp)[:0]
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
		}
		raw = appendBytes(raw, []byte(e.Key))
		raw = appendBytes(raw, []byte(e.Name))
		raw = appendBytes(raw, e.Data)
		raw = binary.BigEndian.AppendUint32(raw, crc32.Checksum(raw[start:], castagnoli))
	}
	out := make([]byte, 5, 64+len(raw)/4)
	out[0] = frameVersion
	out = binary.AppendUvarint(out, uint64(len(entries)))
	out = binary.AppendUvarint(out, uint64(len(targets)))
	for _, t := range targets {
		out = appendBytes(out, []byte(t))
	}
	out = binary.AppendUvarint(out, uint64(len(raw)))
	out = encoder.EncodeAll(raw, out)
	binary.BigEndian.PutUint32(out[1:5], crc32.Checksum(out[5:], castagnoli))
	*rawp = raw
	bufPool.Put(rawp)
	return out
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// ErrCorrupt is returned when a frame or record fails its checksum or does
// not parse. The error wrapping it names the sequence.
var ErrCorrupt = errors.New("wal: corrupt record")

type corruptError struct {
	seq uint64
	msg string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record at sequence %d: %s", e.seq, e.msg)
}
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// readUvarint reads a uvarint from b at *off.
func readUvarint(b []byte, off *int) (uint64, bool) {
	v, n := binary.Uvarint(b[*off:])
	if n <= 0 {
		return 0, false
	}
	*off += n
	return v, true
}

func readVarint(b []byte, off *int) (int64, bool) {
	v, n := binary.Varint(b[*off:])
	if n <= 0 {
		return 0, false
	}
	*off += n
	return v, true
}

func readBytes(b []byte, off *int) ([]byte, bool) {
	n, ok := readUvarint(b, off)
	if !ok || uint64(len(b)-*off) < n {
		return nil, false
	}
	v := b[*off : *off+int(n)]
	*off += int(n)
	return v, true
}

// decodeHeader parses the uncompressed part of the frame stored under
// first. It checks the frame checksum when check is set. The target names
// are copied; payload aliases v.
func decodeHeader(first uint64, v []byte, check bool) (frameHeader, error) {
	h := frameHeader{first: first}
	if len(v) < 5 || v[0] != frameVersion {
		return h, &corruptError{first, "bad frame version"}
	}
	if check && binary.BigEndian.Uint32(v[1:5]) != crc32.Checksum(v[5:], castagnoli) {
		return h, &corruptError{first, "frame checksum mismatch"}
	}
	off := 5
	c, ok := readUvarint(v, &off)
	if !ok || c == 0 {
		return h, &corruptError{first, "bad record count"}
	}
	h.count = int(c)
	nt, ok := readUvarint(v, &off)
	if !ok || nt > uint64(len(v)) {
		return h, &corruptError{first, "bad target table"}
	}
	h.targets = make([]string, nt)
	for i := range h.targets {
		b, ok := readBytes(v, &off)
		if !ok {
			return h, &corruptError{first, "bad target table"}
		}
		h.targets[i] = string(b)
	}
	rl, ok := readUvarint(v, &off)
	if !ok {
		return h, &corruptError{first, "bad payload length"}
	}
	h.rawLen = int(rl)
	h.payload = v[off:]
	return h, nil
}

// decodeRecords decompresses h's records and calls fn for each record with
// a sequence at or above from, in order, until fn returns false. Record data
// passed to fn is owned by the caller (a fresh buffer per frame).
func decodeRecords(h frameHeader, from uint64, fn func(Record) bool) error {
	raw, err := decoder.DecodeAll(h.payload, make([]byte, 0, h.rawLen))
	if err != nil {
		return &corruptError{h.first, "payload does not decompress: " + err.Error()}
	}
	off := 0
	for i := 0; i < h.count; i++ {
		seq := h.first + uint64(i)
		start := off
		var r Record
		r.Seq = seq
		at, ok1 := readVarint(raw, &off)
		et, ok2 := readVarint(raw, &off)
		nt, ok3 := readUvarint(raw, &off)
		if !ok1 || !ok2 || !ok3 || nt > uint64(len(h.targets)) {
			return &corruptError{seq, "bad record header"}
		}
		if nt > 0 {
			r.Targets = make([]string, nt)
			for j := range r.Targets {
				ti, ok := readUvarint(raw, &off)
				if !ok || ti >= uint64(len(h.targets)) {
					return &corruptError{seq, "bad target index"}
				}
				r.Targets[j] = h.targets[ti]
			}
		}
		key, ok1 := readBytes(raw, &off)
		name, ok2 := readBytes(raw, &off)
		data, ok3 := readBytes(raw, &off)
		if !ok1 || !ok2 || !ok3 || len(raw)-off < 4 {
			return &corruptError{seq, "truncated record"}
		}
		if binary.BigEndian.Uint32(raw[off:]) != crc32.Checksum(raw[start:off], castagnoli) {
			return &corruptError{seq, "record checksum mismatch"}
		}
		off += 4
		if seq < from {
			continue
		}
		r.AppendTime = time.Unix(0, at)
		if et != 0 {
			r.EventTime = time.Unix(0, et).UTC()
		}
		r.Key = string(key)
		r.Name = string(name)
		r.Data = data[:len(data):len(data)]
		if !fn(r) {
			return nil
		}
	}
	return nil
}
