package wal

import (
	"testing"
	"time"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
)

// FuzzDecodeFrame: a damaged frame never panics the decoder; it decodes or
// returns ErrCorrupt. The seed corpus runs with go test.
func FuzzDecodeFrame(f *testing.F) {
	es := []*Entry{entry(1, "a"), entry(2, "a", "b"), {Key: "k", Name: "n", Data: []byte(`{}`), EventTime: time.Unix(1, 0)}}
	recs := []frameRecord{{seq: 10, at: 1, e: es[0]}, {seq: 12, at: 2, e: es[1]}, {seq: 14, at: 3, e: es[2]}}
	v2 := encodeFrame(logframe.Zstd, 10, 14, recs)
	v1 := encodeFrameV1(10, time.Unix(5, 0), es)
	f.Add(v2)
	f.Add(v1)
	f.Add(encodeFrame(logframe.S2, 10, 14, recs))
	f.Add(encodeFrame(logframe.None, 10, 14, recs))
	f.Add(v2[:len(v2)/2])
	f.Add(v1[:9])
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		h, err := decodeHeader(10, v)
		if err != nil {
			return
		}
		recs, err := decodeRecords(&h)
		if err != nil {
			return
		}
		var prev uint64
		for _, r := range recs {
			if r.Seq < 10 || r.Seq > h.last || r.Seq <= prev {
				t.Fatalf("record sequence %d out of order or range [10, %d]", r.Seq, h.last)
			}
			prev = r.Seq
		}
	})
}
