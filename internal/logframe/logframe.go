// Package logframe holds what the relay's two logs, wal (a bbolt file) and
// jslog (a JetStream stream), share in the frames they store: the codec
// that compresses a frame's records, the CRC-32C table every checksum uses,
// and the length-prefixed fields frames are built of. Each log keeps its
// own frame layout; a frame records its codec, so frames written with
// different codecs read alike.
//
// # Guarantees
//
// A codec never checks integrity: every frame carries CRC-32C checksums of
// its own, checked before Decompress sees the payload. Decompress never
// panics on damaged input and returns exactly the length the frame stated,
// or an error.
package logframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec is how a frame's records are compressed. Its value is stored in
// frames: never renumber.
type Codec uint8

// Codecs. The zero value is None.
const (
	// None stores the records as they are: no CPU spent, the most bytes.
	None Codec = 0
	// Zstd is zstd at its fastest level, without zstd's own checksum.
	Zstd Codec = 1
	// S2 is S2 block compression (klauspost/compress/s2, a faster
	// Snappy).
	S2 Codec = 2
)

// Default is the codec a log writes when none is chosen: see README
// ("relay.compression") for the figures behind it.
const Default = S2

// ErrUnknownCodec is returned by ParseCodec and Decompress for a codec
// this build does not know.
var ErrUnknownCodec = errors.New("logframe: unknown codec")

// String returns the codec's name as the configuration spells it: "none",
// "zstd" or "s2".
func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	case S2:
		return "s2"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec returns the codec named s ("none", "zstd" or "s2"); ""
// means Default.
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "":
		return Default, nil
	case "none":
		return None, nil
	case "zstd":
		return Zstd, nil
	case "s2":
		return S2, nil
	}
	return 0, fmt.Errorf("%w %q: want s2, zstd or none", ErrUnknownCodec, s)
}

// Known reports whether c is a codec this build reads and writes.
func (c Codec) Known() bool { return c <= S2 }

// The encoder serves as many EncodeAll calls at once as there are CPUs:
// wal compresses the frames of one group commit in parallel. zstd's own
// checksum (xxhash, as costly as the compression of such repetitive JSON)
// is neither written nor checked: frames carry CRC-32C checksums.
var (
	zEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false))
	zDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(true), zstd.IgnoreChecksum(true))
)

var s2Scratch = sync.Pool{New: func() any { return new([]byte) }}

// Compress appends raw compressed with c to dst and returns the result.
// It is safe for concurrent use. An unknown codec panics: callers parse
// codecs with ParseCodec.
func (c Codec) Compress(dst, raw []byte) []byte {
	switch c {
	case None:
		return append(dst, raw...)
	case Zstd:
		return zEncoder.EncodeAll(raw, dst)
	case S2:
		n := s2.MaxEncodedLen(len(raw))
		if n < 0 {
			panic(fmt.Sprintf("logframe: %d bytes are too many for one s2 block", len(raw)))
		}
		// Encode into a reused buffer of the worst case and copy the
		// result (a twentieth of it on JSON): a fresh worst-case buffer
		// per frame costs more in zeroing than s2 does.
		sp := s2Scratch.Get().(*[]byte)
		if cap(*sp) < n {
			*sp = make([]byte, n)
		}
		dst = append(dst, s2.Encode((*sp)[:n], raw)...)
		s2Scratch.Put(sp)
		return dst
	}
	panic("logframe: compress with " + c.String())
}

// Decompress returns payload decompressed with c, in a new buffer the
// caller owns, which must be rawLen bytes long: any other length is an
// error, as is a payload that does not decompress.
func (c Codec) Decompress(payload []byte, rawLen int) ([]byte, error) {
	switch c {
	case None:
		if len(payload) != rawLen {
			return nil, fmt.Errorf("logframe: stored %d bytes, want %d", len(payload), rawLen)
		}
		return bytes.Clone(payload), nil // append zeroes nothing it copies
	case Zstd:
		// zstd appends: the buffer's bytes past what it wrote are never
		// handed out (the length is checked below).
		raw, err := zDecoder.DecodeAll(payload, makeNoZero(min(rawLen, 64<<20))[:0])
		if err != nil {
			return nil, fmt.Errorf("logframe: zstd: %w", err)
		}
		if len(raw) != rawLen {
			return nil, fmt.Errorf("logframe: zstd gave %d bytes, want %d", len(raw), rawLen)
		}
		return raw, nil
	case S2:
		n, err := s2.DecodedLen(payload)
		if err != nil {
			return nil, fmt.Errorf("logframe: s2: %w", err)
		}
		if n != rawLen {
			return nil, fmt.Errorf("logframe: s2 block holds %d bytes, want %d", n, rawLen)
		}
		// s2 fails unless it wrote every byte of the buffer: see
		// makeNoZero.
		raw, err := s2.Decode(makeNoZero(rawLen), payload)
		if err != nil {
			return nil, fmt.Errorf("logframe: s2: %w", err)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownCodec, uint8(c))
}

// Castagnoli is the CRC-32C table of every checksum in a frame.
var Castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC returns the CRC-32C of b.
func CRC(b []byte) uint32 { return crc32.Checksum(b, Castagnoli) }

// AppendBytes appends b to dst prefixed with its length as a uvarint.
func AppendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// ReadUvarint reads a uvarint from b at *off and moves *off past it; false
// if b holds none there.
func ReadUvarint(b []byte, off *int) (uint64, bool) {
	v, n := binary.Uvarint(b[*off:])
	if n <= 0 {
		return 0, false
	}
	*off += n
	return v, true
}

// ReadVarint reads a varint from b at *off and moves *off past it.
func ReadVarint(b []byte, off *int) (int64, bool) {
	v, n := binary.Varint(b[*off:])
	if n <= 0 {
		return 0, false
	}
	*off += n
	return v, true
}

// ReadBytes reads a field AppendBytes wrote from b at *off and moves *off
// past it. The bytes alias b.
func ReadBytes(b []byte, off *int) ([]byte, bool) {
	n, ok := ReadUvarint(b, off)
	if !ok || uint64(len(b)-*off) < n {
		return nil, false
	}
	v := b[*off : *off+int(n)]
	*off += int(n)
	return v, true
}
