package wal

import "time"

// EncodeFrameForBench builds the frame the committer would write for
// entries (sequences from 1) with codec c: for benchmarks in wal_test.
func EncodeFrameForBench(c Compression, entries []*Entry) []byte {
	codec, err := c.codec()
	if err != nil {
		panic(err)
	}
	at := time.Now().UnixNano()
	recs := make([]frameRecord, len(entries))
	for i, e := range entries {
		recs[i] = frameRecord{seq: uint64(i + 1), at: at, e: e}
	}
	return encodeFrame(codec, 1, uint64(len(entries)), recs)
}

// DecodeFrameForBench checks and decodes a frame EncodeFrameForBench built,
// as Read does.
func DecodeFrameForBench(v []byte) ([]Record, error) {
	h, err := decodeHeader(1, v)
	if err != nil {
		return nil, err
	}
	return decodeRecords(&h)
}
