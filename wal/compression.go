package wal

import (
	"errors"
	"fmt"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	bolt "go.etcd.io/bbolt"
)

// Compression is the codec the log compresses new frames with
// (Options.Compression). Every frame records its codec, so a log holds
// frames of several codecs after the setting changes and reads them all.
type Compression string

// Compressions. Figures (bench records, 512 KiB frames) are in README
// ("relay.compression").
const (
	// CompressionS2 is S2 block compression: the least CPU per event of
	// the codecs that compress, about 2.4 times zstd's bytes on disk.
	CompressionS2 Compression = "s2"
	// CompressionZstd is zstd at its fastest level: the fewest bytes on
	// disk, more CPU to write and read. Its frames are version 2, readable
	// by releases before codecs were selectable.
	CompressionZstd Compression = "zstd"
	// CompressionNone stores records uncompressed.
	CompressionNone Compression = "none"
	// DefaultCompression is what the zero Options.Compression means.
	DefaultCompression = CompressionS2
)

// ErrCompression is returned by Open for an unknown Options.Compression.
var ErrCompression = errors.New("wal: unknown compression")

func (c Compression) codec() (logframe.Codec, error) {
	if c == "" {
		c = DefaultCompression
	}
	codec, err := logframe.ParseCodec(string(c))
	if err != nil {
		return 0, fmt.Errorf("%w %q: want s2, zstd or none", ErrCompression, string(c))
	}
	return codec, nil
}

// Validate returns an error wrapping ErrCompression unless c is "" or one
// of the Compression constants.
func (c Compression) Validate() error {
	_, err := c.codec()
	return err
}

// FrameInfo describes one stored frame, from its header alone.
type FrameInfo struct {
	// First and Last are the range of sequences the frame covers.
	First, Last uint64
	// Records is the number of records the frame holds.
	Records int
	// Version is the frame layout's version (1, 2 or 3).
	Version int
	// Codec is the payload's codec: "zstd", "s2" or "none".
	Codec string
	// RawBytes is the size of the frame's records before compression.
	RawBytes int
	// StoredBytes is the size of the frame in the file (header included).
	StoredBytes int
	// Damage says why the frame's header cannot be read; "" when it can.
	// The other fields but First and Last are zero then.
	Damage string
}

// FrameInfos calls fn with every frame's FrameInfo, oldest first, until fn
// returns false. It reads headers only: payloads are neither decompressed
// nor checked (Verify does that). An error wrapping ErrCorrupt means bbolt
// could not read the file.
func (l *Log) FrameInfos(fn func(FrameInfo) bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damagedFile(l.db.Path(), r)
		}
	}()
	last := l.LastSeq()
	return l.db.View(func(tx *bolt.Tx) error {
		scanFrames(tx, 0, last, func(f *storedFrame) bool {
			fi := FrameInfo{First: f.first, Last: f.last}
			if f.err != nil {
				fi.Damage = reason(f.err)
				return fn(fi)
			}
			fi.Records, fi.Version, fi.Codec, fi.RawBytes = f.h.count, f.h.version, f.h.codec.String(), f.h.rawLen
			fi.StoredBytes = f.h.size
			return fn(fi)
		})
		return nil
	})
}
