package wal

import (
	"context"
	"path/filepath"
	"testing"
)

func TestBacklogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Register("b")
	l.Register("idle")
	ctx := context.Background()
	// Frame 1: seqs 1-2, frame 2: seqs 3-5, frame 3: seq 6 (only for c,
	// which never registers).
	if _, err := l.Append(ctx, entry(1, "a"), entry(2, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, entry(3, "a"), entry(4, "b"), entry(5, "a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, entry(6, "c")); err != nil {
		t.Fatal(err)
	}
	l.Advance("a", 4) // a: 5 pending
	l.Advance("b", 3) // b: 4 and 5 pending
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var frames []uint64
	got, err := ro.Backlogs(func(seq uint64) { frames = append(frames, seq) })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		cursor    uint64
		hasCursor bool
		pending   int64
		oldest    uint64
	}{
		"a":    {4, true, 1, 5},
		"b":    {3, true, 2, 4},
		"idle": {1, true, 0, 0},
		"c":    {0, false, 1, 6},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d backlogs %+v, want %d", len(got), got, len(want))
	}
	for tg, w := range want {
		b := got[tg]
		if b.Cursor != w.cursor || b.HasCursor != w.hasCursor || b.Pending != w.pending || b.OldestSeq != w.oldest {
			t.Errorf("backlog of %s: got %+v, want cursor %d (has %v) pending %d oldest %d", tg, b, w.cursor, w.hasCursor, w.pending, w.oldest)
		}
		if (w.pending > 0) == b.OldestAppend.IsZero() {
			t.Errorf("backlog of %s: oldest append time %v with %d pending", tg, b.OldestAppend, b.Pending)
		}
	}
	// Frame 1 (seqs 1-2) was reclaimed: a and b both passed it.
	if len(frames) != 2 || frames[0] != 5 || frames[1] != 6 {
		t.Errorf("progress got %v, want [5 6]", frames)
	}
	if n := ro.Frames(); n != 2 {
		t.Errorf("Frames got %d, want 2", n)
	}
	if errs := ro.CheckStorage(); len(errs) != 0 {
		t.Errorf("CheckStorage on a sound log got %v, want none", errs)
	}
}

func TestBacklogsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	l := openTest(t, path, Options{})
	l.Register("a")
	l.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Backlogs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := got["a"]; len(got) != 1 || !b.HasCursor || b.Cursor != 1 || b.Pending != 0 {
		t.Fatalf("got %+v, want only a with cursor 1 and nothing pending", got)
	}
}
