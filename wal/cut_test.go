package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bucketrelay/bucketrelay/internal/logframe"
	"github.com/klauspost/compress/zstd"
)

// A large group commit is cut into frames compressed in parallel; every
// appender still gets consecutive sequences, and the records read back,
// before and after a reopen, are the ones appended, in order.
func TestLargeGroupCommitIsCutIntoFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	const appenders, per = 8, 400
	pad := bytes.Repeat([]byte("x"), 1000)
	firsts := make([]uint64, appenders)
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es := make([]*Entry, per)
			for i := range es {
				es[i] = &Entry{Targets: []string{"a"}, Key: fmt.Sprintf("b/%d-%d", g, i), Name: "s3:ObjectCreated:Put", Data: fmt.Appendf(nil, `{"g":%d,"i":%d,"p":%q}`, g, i, pad)}
			}
			s, err := l.Append(context.Background(), es...)
			if err != nil {
				t.Error(err)
			}
			firsts[g] = s
		}()
	}
	wg.Wait()
	check := func(l *Log) {
		t.Helper()
		recs := readAll(t, l, 1, "a")
		if len(recs) != appenders*per {
			t.Fatalf("read %d records, want %d", len(recs), appenders*per)
		}
		for g, first := range firsts {
			for i := range per {
				r := recs[first-1+uint64(i)]
				if r.Seq != first+uint64(i) || r.Key != fmt.Sprintf("b/%d-%d", g, i) {
					t.Fatalf("record %d: got seq %d key %q, want key b/%d-%d", first+uint64(i), r.Seq, r.Key, g, i)
				}
			}
		}
	}
	check(l)
	l.ix.mu.Lock()
	frames := len(l.ix.frames)
	l.ix.mu.Unlock()
	// 3.2 MB of records: at least ceil(3.2 MB / (frameChunk + one append)) frames.
	if frames < 3 {
		t.Fatalf("got %d frames, want at least 3 (batches are cut at %d bytes)", frames, frameChunk)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openTest(t, path, Options{})
	defer l.Close()
	check(l)
}

// Frames written before zstd's own checksum was dropped (it is redundant
// with the frame's CRC-32C) still decode.
func TestFramesWithZstdChecksumDecode(t *testing.T) {
	withCRC, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	recs := []frameRecord{{seq: 5, at: 1, e: entry(5, "a")}, {seq: 6, at: 2, e: entry(6, "a")}}
	v := encodeFrame(logframe.Zstd, 5, 6, recs)
	h, err := decodeHeader(5, v)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := logframe.Zstd.Decompress(h.payload, h.rawLen)
	if err != nil {
		t.Fatal(err)
	}
	// The same header over the records compressed with zstd's checksum.
	payload := withCRC.EncodeAll(raw, nil)
	v = append(append([]byte(nil), v[:len(v)-len(h.payload)]...), payload...)
	binary.BigEndian.PutUint32(v[5:9], logframe.CRC(payload))
	if h, err = decodeHeader(5, v); err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecords(&h)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Seq != 6 || string(got[1].Data) != string(recs[1].e.Data) {
		t.Fatalf("got %+v, want the records of sequences 5 and 6", got)
	}
}

// Records read back with the same targets share one slice, and records
// with other targets, many targets or none get their own.
func TestDecodedTargets(t *testing.T) {
	many := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	es := []*Entry{entry(1, "a", "b"), entry(2, "a", "b"), entry(3, "b"), entry(4), entry(5, many...), entry(6, many...), entry(7, "b")}
	recs := make([]frameRecord, len(es))
	for i, e := range es {
		recs[i] = frameRecord{seq: uint64(i + 1), e: e}
	}
	h, err := decodeHeader(1, encodeFrame(logframe.S2, 1, uint64(len(es)), recs))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecords(&h)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if fmt.Sprint(r.Targets) != fmt.Sprint(es[i].Targets) {
			t.Fatalf("record %d: got targets %v, want %v", i+1, r.Targets, es[i].Targets)
		}
	}
	if &got[0].Targets[0] != &got[1].Targets[0] {
		t.Errorf("records 1 and 2 have their own target slices, want one shared")
	}
	if cap(got[0].Targets) != len(got[0].Targets) {
		t.Errorf("a shared target slice has room (cap %d, len %d): an append would write into it", cap(got[0].Targets), len(got[0].Targets))
	}
	got[0].Targets = append(got[0].Targets, "z")
	if len(got[1].Targets) != 2 {
		t.Errorf("appending to record 1's targets changed record 2's: %v", got[1].Targets)
	}
}
