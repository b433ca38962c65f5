package wal

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
	"unsafe"
)

// adjacent reports whether b starts where a ends in memory.
func adjacent(a, b []byte) bool {
	return uintptr(unsafe.Pointer(unsafe.SliceData(a)))+uintptr(len(a)) == uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// A target owning little of a frame gets its records' data copied out of
// it (adjacent in one buffer), so keeping them does not keep the frame
// alive; a target owning most of it shares the frame's bytes.
func TestReadCopiesSparseTargetData(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{})
	defer l.Close()
	l.Register("dense")
	l.Register("sparse")
	var batch []*Entry
	for i := range 100 {
		if i == 10 || i == 50 {
			batch = append(batch, entry(i, "dense", "sparse"))
		} else {
			batch = append(batch, entry(i, "dense"))
		}
	}
	if _, err := l.Append(context.Background(), batch...); err != nil { // one frame
		t.Fatal(err)
	}
	sparse := readAll(t, l, 1, "sparse")
	if len(sparse) != 2 {
		t.Fatalf("sparse records = %d, want 2", len(sparse))
	}
	if !adjacent(sparse[0].Data, sparse[1].Data) {
		t.Fatal("a sparse target's records alias the frame: they should be copied out into one buffer")
	}
	for i, r := range sparse {
		if want := fmt.Sprintf(`{"i":%d}`, []int{10, 50}[i]); string(r.Data) != want || cap(r.Data) != len(r.Data) {
			t.Fatalf("sparse record %d: data %q cap %d, want %q, full", i, r.Data, cap(r.Data), want)
		}
	}
	dense := readAll(t, l, 1, "dense")
	if len(dense) != 100 {
		t.Fatalf("dense records = %d, want 100", len(dense))
	}
	if adjacent(dense[0].Data, dense[1].Data) {
		t.Fatal("a dense target's records were copied: they should share the frame's bytes")
	}
	// Keys alias the frame too (dense), or are copied out (sparse).
	// The frame's records lie from the first key to the last data: a live
	// copy cannot lie there.
	lo := uintptr(unsafe.Pointer(unsafe.StringData(dense[0].Key)))
	hi := uintptr(unsafe.Pointer(unsafe.SliceData(dense[99].Data))) + uintptr(len(dense[99].Data))
	within := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return p >= lo && p < hi
	}
	for i, r := range sparse {
		if want := fmt.Sprintf("images/%d.jpg", []int{10, 50}[i]); r.Key != want {
			t.Fatalf("sparse record %d: key %q, want %q", i, r.Key, want)
		}
		if within(r.Key) {
			t.Fatalf("sparse record %d: its key aliases the frame, want a copy", i)
		}
	}
	for i, r := range dense {
		if want := fmt.Sprintf("images/%d.jpg", i); r.Key != want {
			t.Fatalf("dense record %d: key %q, want %q", i, r.Key, want)
		}
	}
	if prev, next := dense[49].Data, dense[50].Data; !within(dense[50].Key) ||
		uintptr(unsafe.Pointer(unsafe.StringData(dense[50].Key))) < uintptr(unsafe.Pointer(unsafe.SliceData(prev))) ||
		uintptr(unsafe.Pointer(unsafe.StringData(dense[50].Key))) > uintptr(unsafe.Pointer(unsafe.SliceData(next))) {
		t.Fatal("a dense target's key was copied: it should share the frame's bytes")
	}
}

// Read's records may be kept: later reads, appends and the reclamation of
// their frame leave them intact.
func TestReadDataMayBeKept(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{})
	defer l.Close()
	ctx := context.Background()
	l.Register("a")
	l.Register("b")
	var want [][]byte
	for i := range 200 {
		targets := []string{"a"}
		if i%7 == 0 {
			targets = append(targets, "b")
		}
		e := entry(i, targets...)
		want = append(want, bytes.Clone(e.Data))
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	kept := append(readAll(t, l, 1, "a"), readAll(t, l, 1, "b")...)
	for range 3 {
		readAll(t, l, 1, "a")
		readAll(t, l, 1, "b")
	}
	// Every target passes everything: the frames are reclaimed.
	if err := l.Advance("a", 201); err != nil {
		t.Fatal(err)
	}
	if err := l.Advance("b", 201); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := l.Append(ctx, entry(1000+i, "a", "b")); err != nil {
			t.Fatal(err)
		}
	}
	readAll(t, l, 201, "a")
	for _, r := range kept {
		if w := want[r.Seq-1]; !bytes.Equal(r.Data, w) {
			t.Fatalf("record %d: kept data %q, want %q", r.Seq, r.Data, w)
		}
		if w := fmt.Sprintf("images/%d.jpg", r.Seq-1); r.Key != w {
			t.Fatalf("record %d: kept key %q, want %q", r.Seq, r.Key, w)
		}
	}
}

// Reads of one frame share one decode; a frame rewritten in place under
// the same key (compaction) is decoded again.
func TestReadSharesDecodedFrame(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{})
	defer l.Close()
	ctx := context.Background()
	l.Register("a")
	l.Register("b")
	var batch []*Entry
	for i := range 100 {
		if i < 60 {
			batch = append(batch, entry(i, "a"))
		} else {
			batch = append(batch, entry(i, "a", "b"))
		}
	}
	if _, err := l.Append(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	a, b := readAll(t, l, 1, "a"), readAll(t, l, 1, "b")
	if len(a) != 100 || len(b) != 40 {
		t.Fatalf("records: a %d, b %d; want 100, 40", len(a), len(b))
	}
	if all := readAll(t, l, 1, ""); unsafe.SliceData(a[65].Data) != unsafe.SliceData(all[65].Data) {
		t.Fatal("two targets' reads of one frame decoded it twice")
	}
	// a passes everything, b has not started: the frame is compacted to
	// b's records, under the same key.
	if err := l.Advance("a", 101); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := l.Append(ctx, entry(1000, "a")); err != nil { // commits, which compact
			t.Fatal(err)
		}
		all := readAll(t, l, 1, "")
		if len(all) > 0 && all[0].Seq == 61 {
			for i, r := range all[:40] {
				if want := fmt.Sprintf(`{"i":%d}`, 60+i); r.Seq != uint64(61+i) || string(r.Data) != want {
					t.Fatalf("after compaction record %d: seq %d data %q, want %d %q", i, r.Seq, r.Data, 61+i, want)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the frame was not compacted (or a stale decode was read): first record %d", all[0].Seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
