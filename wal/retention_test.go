package wal

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// appendEach appends n records one frame each, routed to targets, and
// returns the first sequence.
func appendEach(t *testing.T, l *Log, from, n int, targets ...string) uint64 {
	t.Helper()
	var first uint64
	for i := from; i < from+n; i++ {
		s, err := l.Append(context.Background(), entry(i, targets...))
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 {
			first = s
		}
	}
	return first
}

// deliverAll moves target's cursor past every record and waits until the
// move is committed.
func deliverAll(t *testing.T, l *Log, target string) {
	t.Helper()
	next := l.LastSeq() + 1
	if err := l.Advance(target, next); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		l.ix.mu.Lock()
		defer l.ix.mu.Unlock()
		return l.ix.durable[target] == next
	})
}

func TestRetentionOffReclaimsDelivered(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	l.Register("a")
	appendEach(t, l, 0, 5, "a")
	deliverAll(t, l, "a")
	waitFor(t, func() bool { return l.Events() == 0 })
	if s := l.Retained(); s.First != 6 || s.Last != 5 || !s.Oldest.IsZero() || s.Events != 0 {
		t.Fatalf("Retained = %+v, want first 6, last 5, nothing kept", s)
	}
	if _, err := l.Rewind("a", 1); !errors.Is(err, ErrNotRetained) {
		t.Fatalf("rewind without retention: err %v, want ErrNotRetained", err)
	}
}

func TestRetentionByAge(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	l.Register("b")
	appendEach(t, l, 0, 10, "a", "b")
	deliverAll(t, l, "a")
	deliverAll(t, l, "b")
	time.Sleep(10 * time.Millisecond) // a few commits
	if got := l.Events(); got != 10 {
		t.Fatalf("events held = %d, want 10 (retained for an hour)", got)
	}
	s := l.Retained()
	if s.First != 1 || s.Last != 10 || s.Events != 10 || s.Oldest.IsZero() || time.Since(s.Oldest) > time.Minute {
		t.Fatalf("Retained = %+v, want 1..10, 10 events, oldest just now", s)
	}
	if p, _ := l.Pending("a"); p != 0 {
		t.Fatalf("pending a = %d, want 0: retained records are not pending", p)
	}
	// A shorter age lets them go.
	if err := l.SetRetention(Retention{Age: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Events() == 0 })
	if s := l.Retained(); s.First != 11 || s.Events != 0 || s.Bytes != 0 {
		t.Fatalf("Retained after aging out = %+v, want first 11, nothing kept", s)
	}
}

func TestRetentionByBytesOldestFirst(t *testing.T) {
	one := entry(0, "a").size()
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Bytes: 4 * one}})
	defer l.Close()
	l.Register("a")
	appendEach(t, l, 0, 10, "a") // records 0..9, same size
	deliverAll(t, l, "a")
	waitFor(t, func() bool { return l.Events() == 4 })
	s := l.Retained()
	if s.First != 7 || s.Last != 10 || s.Events != 4 || s.Bytes != 4*one {
		t.Fatalf("Retained = %+v, want the newest 4 records 7..10 (%d bytes)", s, 4*one)
	}
	if got := readAll(t, l, 1, ""); len(got) != 4 || got[0].Seq != 7 {
		t.Fatalf("held records: %v, want 7..10", seqs(got))
	}
}

// TestRetainedCountsAgainstBound: retained history counts against a
// target's bound, and is reclaimed oldest first before an append waits.
func TestRetainedCountsAgainstBound(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{MaxEvents: 5, CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	appendEach(t, l, 0, 5, "a")
	deliverAll(t, l, "a")
	waitFor(t, func() bool { l.ix.mu.Lock(); defer l.ix.mu.Unlock(); return l.ix.retN == 5 })
	// The bound is full of retained history: appends never wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 5; i < 8; i++ {
		if _, err := l.Append(ctx, entry(i, "a")); err != nil {
			t.Fatalf("append %d with a bound full of retained history: %v", i, err)
		}
	}
	waitFor(t, func() bool { return l.Events() == 5 })
	s := l.Retained()
	if s.First != 4 || s.Last != 8 || s.Events != 2 {
		t.Fatalf("Retained = %+v, want 4..8 with 2 kept (3 oldest reclaimed for room)", s)
	}
	if p, _ := l.Pending("a"); p != 3 {
		t.Fatalf("pending = %d, want 3", p)
	}
	// Pending records still push back once the bound is theirs.
	appendEach(t, l, 8, 2, "a")
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := l.Append(short, entry(10, "a")); !errors.Is(err, ErrFull) {
		t.Fatalf("append over a bound of pending records: err %v, want ErrFull", err)
	}
}

func TestRewind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	opts := Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}}
	l := openTest(t, path, opts)
	l.Register("a")
	l.Register("b")
	appendEach(t, l, 0, 10, "a")
	appendEach(t, l, 10, 10, "a", "b")
	deliverAll(t, l, "a")
	deliverAll(t, l, "b")
	if _, err := l.Rewind("a", 22); !errors.Is(err, ErrAhead) {
		t.Fatalf("rewind past the cursor: err %v, want ErrAhead", err)
	}
	if _, err := l.Rewind("nobody", 1); !errors.Is(err, ErrNoCursor) {
		t.Fatalf("rewind of an unknown target: err %v, want ErrNoCursor", err)
	}
	n, err := l.Rewind("a", 6)
	if err != nil || n != 15 {
		t.Fatalf("rewind a to 6: %d, %v; want 15 records", n, err)
	}
	if p, _ := l.Pending("a"); p != 15 {
		t.Fatalf("pending a after rewind = %d, want 15", p)
	}
	if p, _ := l.Pending("b"); p != 0 {
		t.Fatalf("pending b after a's rewind = %d, want 0", p)
	}
	n, err = l.Rewind("b", 1)
	if err != nil || n != 10 {
		t.Fatalf("rewind b to 1: %d, %v; want its 10 records", n, err)
	}
	if s := l.Retained(); s.Events != 5 {
		t.Fatalf("kept after rewinds = %d, want 5 (1..5, a's only and passed)", s.Events)
	}
	// Durable: reopened, the cursors are where the rewinds left them.
	l.Close()
	l = openTest(t, path, opts)
	defer l.Close()
	if c, _ := l.Cursor("a"); c != 6 {
		t.Fatalf("cursor a after reopen = %d, want 6", c)
	}
	if c, _ := l.Cursor("b"); c != 1 {
		t.Fatalf("cursor b after reopen = %d, want 1", c)
	}
	if p, _ := l.Pending("a"); p != 15 {
		t.Fatalf("pending a after reopen = %d, want 15", p)
	}
	if got := readAll(t, l, 6, "a"); len(got) != 15 || got[0].Seq != 6 {
		t.Fatalf("re-read for a: %v, want 6..20", seqs(got))
	}
	// Delivered again, retained again.
	deliverAll(t, l, "a")
	deliverAll(t, l, "b")
	waitFor(t, func() bool { return l.Retained().Events == 20 })
}

func TestRewindBounds(t *testing.T) {
	one := entry(0, "a").size()
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Bytes: 3 * one}})
	defer l.Close()
	l.Register("a")
	appendEach(t, l, 0, 6, "a")
	deliverAll(t, l, "a")
	waitFor(t, func() bool { return l.Events() == 3 })
	_, err := l.Rewind("a", 2)
	var re *RetainedError
	if !errors.As(err, &re) || re.First != 4 || re.Oldest.IsZero() {
		t.Fatalf("rewind before the retained history: err %v, want a RetainedError naming 4", err)
	}
	if !strings.Contains(err.Error(), "oldest available event is sequence 4") {
		t.Fatalf("error %q does not name the oldest available event", err)
	}
	if n, err := l.Rewind("a", 4); err != nil || n != 3 {
		t.Fatalf("rewind to the oldest retained: %d, %v; want 3", n, err)
	}
}

func TestSeqAt(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	before := time.Now()
	appendEach(t, l, 0, 3, "a")
	time.Sleep(5 * time.Millisecond)
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	appendEach(t, l, 3, 3, "a")
	deliverAll(t, l, "a")
	for _, c := range []struct {
		at   time.Time
		want uint64
	}{{before.Add(-time.Hour), 1}, {before, 1}, {mid, 4}, {time.Now().Add(time.Hour), 7}} {
		got, err := l.SeqAt(c.at)
		if err != nil || got != c.want {
			t.Fatalf("SeqAt(%v) = %d, %v; want %d", c.at, got, err, c.want)
		}
	}
	// Once the first records are gone, a time before the history fails.
	if err := l.SetRetention(Retention{Bytes: 3 * entry(0, "a").size()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Events() == 3 })
	if _, err := l.SeqAt(before); !errors.Is(err, ErrNotRetained) {
		t.Fatalf("SeqAt before the retained history: err %v, want ErrNotRetained", err)
	}
	if got, err := l.SeqAt(mid); err != nil || got != 4 {
		t.Fatalf("SeqAt(mid) = %d, %v; want 4", got, err)
	}
}

func TestRetentionReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	opts := Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}}
	l := openTest(t, path, opts)
	l.Register("a")
	appendEach(t, l, 0, 5, "a")
	deliverAll(t, l, "a")
	want := l.Retained()
	l.Close()
	l = openTest(t, path, opts)
	got := l.Retained()
	if got.First != 1 || got.Last != 5 || got.Events != 5 || !got.Oldest.Equal(want.Oldest) {
		t.Fatalf("Retained after reopen = %+v, want %+v", got, want)
	}
	l.Close()
	// Opened without retention, the kept history goes.
	l = openTest(t, path, Options{CursorSyncInterval: time.Millisecond})
	defer l.Close()
	waitFor(t, func() bool { return l.Events() == 0 })
}

func TestBackfill(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	appendEach(t, l, 0, 6, "a")
	deliverAll(t, l, "a")
	even := func(r Record) bool { return r.Data[len(r.Data)-2]%2 == 0 } // {"i":N}
	if _, err := l.Backfill("new", 8, even); !errors.Is(err, ErrAhead) {
		t.Fatalf("Backfill from past the end: %v, want ErrAhead", err)
	}
	n, err := l.Backfill("new", 0, even)
	if err != nil || n != 3 {
		t.Fatalf("Backfill = %d, %v; want 3", n, err)
	}
	if c, ok := l.Cursor("new"); !ok || c != 1 {
		t.Fatalf("cursor of new = %d, %v; want 1", c, ok)
	}
	if p, _ := l.Pending("new"); p != 3 {
		t.Fatalf("pending new = %d, want 3", p)
	}
	got := readAll(t, l, 1, "new")
	if len(got) != 3 || got[0].Seq != 1 || got[1].Seq != 3 || got[2].Seq != 5 {
		t.Fatalf("records for new: %v, want 1 3 5", seqs(got))
	}
	if got := readAll(t, l, 1, "a"); len(got) != 6 {
		t.Fatalf("records for a after the backfill: %d, want 6", len(got))
	}
	deliverAll(t, l, "new")
	waitFor(t, func() bool { return l.Retained().Events == 6 })
}

// TestRetentionDefersCompaction: a dead target pins its records; frames
// the retention would keep (younger than its age, within its bytes) are
// not compacted, so the live target can be rewound into them; once they
// leave the retention they are compacted and the retained range starts
// after them.
func TestRetentionDefersCompaction(t *testing.T) {
	for _, ret := range []Retention{{Age: time.Hour}, {Bytes: 1 << 20}} {
		t.Run(fmt.Sprintf("%+v", ret), func(t *testing.T) { testRetentionDefersCompaction(t, ret) })
	}
}

func testRetentionDefersCompaction(t *testing.T, ret Retention) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, NoSync: true, Retention: ret})
	defer l.Close()
	l.Register("dead")
	l.Register("live")
	for f := 0; f < 4; f++ {
		es := []*Entry{entry(f*10, "dead", "live")}
		for i := 1; i < 10; i++ {
			es = append(es, entry(f*10+i, "live"))
		}
		if _, err := l.Append(context.Background(), es...); err != nil {
			t.Fatal(err)
		}
	}
	deliverAll(t, l, "live")
	time.Sleep(20 * time.Millisecond) // commits that would compact
	if got := l.Events(); got != 40 {
		t.Fatalf("events held = %d, want 40 (young frames are not compacted)", got)
	}
	if s := l.Retained(); s.First != 1 || s.Events != 0 {
		t.Fatalf("Retained = %+v, want from 1, none kept (the dead target pins every frame)", s)
	}
	if n, err := l.Rewind("live", 1); err != nil || n != 40 {
		t.Fatalf("rewind live into pinned frames: %d, %v; want 40", n, err)
	}
	deliverAll(t, l, "live")
	if err := l.SetRetention(Retention{Age: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return l.Events() == 4 })
	if got := readAll(t, l, 1, "dead"); len(got) != 4 {
		t.Fatalf("dead's records after compaction: %d, want 4", len(got))
	}
	if s := l.Retained(); s.First != 41 {
		t.Fatalf("Retained after compaction = %+v, want first 41 (nothing whole)", s)
	}
	if _, err := l.Rewind("live", 1); !errors.Is(err, ErrNotRetained) {
		t.Fatalf("rewind into compacted frames: %v, want ErrNotRetained", err)
	}
}

// TestRewindWhileAppending: rewinds of one target while records are
// appended and another target keeps up leave every count right: the
// target's pending load equals what it has to read again.
func TestRewindWhileAppending(t *testing.T) {
	l := openTest(t, filepath.Join(t.TempDir(), "wal.db"), Options{CursorSyncInterval: time.Millisecond, NoSync: true, MaxEvents: 200, Retention: Retention{Age: time.Hour}})
	defer l.Close()
	l.Register("a")
	l.Register("b")
	stop := make(chan struct{})
	wg := keepUp(l, "b", stop)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 600; i++ {
			if _, err := l.Append(context.Background(), entry(i, "a", "b")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	appending := true
	for appending {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			appending = false
		default:
		}
		deliverAll(t, l, "a")
		if _, err := l.Rewind("a", l.Retained().First); err != nil && !errors.Is(err, ErrNotRetained) {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	c, _ := l.Cursor("a")
	want := int64(len(readAll(t, l, c, "a")))
	if p, _ := l.Pending("a"); p != want {
		t.Fatalf("pending a = %d, want %d (records from its cursor %d)", p, want, c)
	}
	if p, _ := l.Pending("a"); p+l.Retained().Events > 200 {
		t.Fatalf("pending %d + retained %d over the bound 200", p, l.Retained().Events)
	}
	deliverAll(t, l, "a")
	deliverAll(t, l, "b")
	waitFor(t, func() bool { p, _ := l.Pending("a"); return p == 0 })
}
